"""Event playback: the episode's frames with boxes drawn (JSON list, one JPEG per frame) and an MP4 clip."""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, send_file, url_for
from werkzeug.exceptions import NotFound

from image_pipeline.web import services
from image_pipeline.web.playback import MAX_PLAYBACK_FRAMES, PlayFrame, episode_frames, render_frame, write_clip

logger = logging.getLogger(__name__)
bp = Blueprint("playback", __name__)
FRAMES_TTL_S = 10.0
MAX_CACHED_EPISODES = 16


class EpisodeCache:
    """Frame lists of recently played events, kept FRAMES_TTL_S per record version.

    A playing page asks for every frame in turn; without this each request would rebuild the list
    (a path check and a stat per frame).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, list[PlayFrame]]] = {}

    def frames(self, event: dict[str, Any]) -> list[PlayFrame]:
        """The record's playable frames, from the cache while fresh."""
        version = repr([event.get(k) for k in ("first_seq", "last_seq", "frame_count", "ended_at", "status")])
        key = (str(event.get("event_id")), version)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < FRAMES_TTL_S:
                return hit[1]
        frames = episode_frames(services().cfg, event)
        with self._lock:
            if len(self._entries) >= MAX_CACHED_EPISODES:
                self._entries.pop(min(self._entries, key=lambda k: self._entries[k][0]))
            self._entries[key] = (now, frames)
        return frames


def _episode(event_id: str) -> tuple[dict[str, Any], list[PlayFrame]]:
    """The event record and its playable frames, or a 404 (unknown or unsafe ids included)."""
    event = services().records.event(event_id)
    if event is None:
        raise NotFound(f"no event {event_id[:80]!r}")
    cache: EpisodeCache = current_app.extensions.setdefault("image_pipeline.playback", EpisodeCache())
    return event, cache.frames(event)


@bp.get("/api/events/<event_id>/playback")
def frames_api(event_id: str) -> Any:
    """The episode's frames in capture order, each with the URL of its drawn JPEG and its delay."""
    _, frames = _episode(event_id)
    listed = []
    for frame in frames:
        item = frame.to_dict()
        item["url"] = url_for("playback.frame", event_id=event_id, index=frame.index)
        listed.append(item)
    return jsonify(event_id=event_id, frames=listed, max_frames=MAX_PLAYBACK_FRAMES,
                   clip_url=url_for("playback.clip", event_id=event_id))


@bp.get("/events/<event_id>/frames/<int:index>.jpg")
def frame(event_id: str, index: int) -> Any:
    """One frame of the episode with its boxes drawn."""
    event, frames = _episode(event_id)
    if not 0 <= index < len(frames):
        raise NotFound(f"the episode has {len(frames)} frame(s)")
    data = render_frame(services().cfg, event, frames, index)
    if data is None:
        raise NotFound("that frame could not be read")
    return send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=60)


@bp.get("/events/<event_id>/clip.mp4")
def clip(event_id: str) -> Any:
    """The episode as an MP4 download (OpenCV VideoWriter, mp4v), at most MAX_PLAYBACK_FRAMES frames."""
    event, frames = _episode(event_id)
    data, written = write_clip(services().cfg, event, frames)
    if not written:
        raise NotFound("no stored frame of this episode could be read")
    logger.info("clip event=%s frames=%d written=%d bytes=%d", event_id, len(frames), written, len(data))
    return send_file(io.BytesIO(data), mimetype="video/mp4", as_attachment=True,
                     download_name=f"{event['event_id']}.mp4", max_age=0)
