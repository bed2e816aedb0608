"""Event playback: the episode's frames with boxes drawn (JSON list, one JPEG per frame) and an MP4 clip."""

from __future__ import annotations

import io
import logging
from typing import Any

from flask import Blueprint, jsonify, send_file, url_for
from werkzeug.exceptions import NotFound

from image_pipeline.web import services
from image_pipeline.web.playback import MAX_PLAYBACK_FRAMES, PlayFrame, episode_frames, render_frame, write_clip

logger = logging.getLogger(__name__)
bp = Blueprint("playback", __name__)


def _episode(event_id: str) -> tuple[dict[str, Any], list[PlayFrame]]:
    """The event record and its playable frames, or a 404 (unknown or unsafe ids included)."""
    event = services().records.event(event_id)
    if event is None:
        raise NotFound(f"no event {event_id[:80]!r}")
    return event, episode_frames(services().cfg, event)


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
