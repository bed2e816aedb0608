"""Group per-frame detections of one camera into episodes: one event per happening, not one per frame."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from image_pipeline.model import VISUAL_EVENT_TYPES
from image_pipeline.vision.detection import Box, Detection


@dataclass
class FrameHit:
    """One frame of an episode."""

    image_id: str
    seq: int
    score: float
    boxes: tuple[Box, ...]
    captured_at: float


@dataclass
class Episode:
    """A run of frames of one camera showing one event type."""

    event_id: str
    event_type: str
    camera_id: str
    frames: list[FrameHit]
    previous_image_id: str | None
    key_index: int = 0
    status: str = "open"

    @property
    def score(self) -> float:
        """The highest frame score."""
        return max((f.score for f in self.frames), default=0.0)

    def snapshot(self) -> Episode:
        """An independent copy, safe to hand out while this one keeps growing."""
        return dataclasses.replace(self, frames=[dataclasses.replace(f) for f in self.frames])

    def to_record(self) -> dict[str, Any]:
        """JSON-ready record; a pure function of the frames, so replays give byte-identical records."""
        first, last = self.frames[0], self.frames[-1]
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "camera_id": self.camera_id,
            "status": self.status,
            "score": self.score,
            "first_image_id": first.image_id,
            "last_image_id": last.image_id,
            "first_seq": first.seq,
            "last_seq": last.seq,
            "key_image_id": self.frames[self.key_index].image_id,
            "previous_image_id": self.previous_image_id,
            "frame_count": len(self.frames),
            "started_at": first.captured_at,
            "ended_at": last.captured_at,
            "frames": [
                {"image_id": f.image_id, "seq": f.seq, "score": f.score, "boxes": [list(b) for b in f.boxes]}
                for f in self.frames
            ],
        }


@dataclass(frozen=True)
class EpisodeUpdate:
    """A lifecycle step of an episode: start, update (every few hit frames) or end."""

    phase: str
    episode: Episode


def _per_type(intrusion: int, tamper: int, scene: int, lighting: int) -> dict[str, int]:
    return {"intrusion": intrusion, "tamper": tamper, "scene_change": scene, "lighting_change": lighting}


@dataclass(frozen=True)
class EpisodeParams:
    """How detections become episodes, per event type."""

    # Frames without a hit that end an episode; a shorter gap is bridged.
    end_after: dict[str, int] = field(default_factory=lambda: _per_type(5, 3, 3, 2))
    # Hit frames needed to open an episode (single-frame noise must not raise an intrusion).
    min_frames: dict[str, int] = field(default_factory=lambda: _per_type(2, 1, 1, 1))
    # Missed frames tolerated between the hits that open an episode.
    start_gap: int = 1
    update_every: int = 10


@dataclass
class _Pending:
    hits: list[FrameHit]
    previous_image_id: str | None
    misses: int = 0


class EpisodeTracker:
    """Turns one camera's per-frame detections, fed in capture order, into episode lifecycle updates."""

    def __init__(self, camera_id: str, params: EpisodeParams | None = None) -> None:
        self.camera_id = camera_id
        self.params = params or EpisodeParams()
        self._open: dict[str, Episode] = {}
        self._silence: dict[str, int] = {}
        self._since_update: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._last_image_id: str | None = None

    def observe(self, image_id: str, seq: int, captured_at: float, detections: list[Detection]) -> list[EpisodeUpdate]:
        """Feed one frame's detections; returns the start/update/end steps this frame causes."""
        hits: dict[str, FrameHit] = {}
        for det in detections:
            prior = hits.get(det.type)
            if prior is None:
                hits[det.type] = FrameHit(image_id, seq, det.score, tuple(det.boxes), captured_at)
            else:  # several detections of one type in a frame: keep the best score, all boxes
                prior.score = max(prior.score, det.score)
                prior.boxes = prior.boxes + tuple(det.boxes)
        updates: list[EpisodeUpdate] = []
        for event_type in VISUAL_EVENT_TYPES:  # fixed order keeps the output deterministic
            hit = hits.get(event_type)
            if event_type in self._open:
                updates.extend(self._continue(event_type, hit))
            elif hit is not None:
                updates.extend(self._begin(event_type, hit))
            else:
                self._miss_pending(event_type)
        self._last_image_id = image_id
        return updates

    def finish(self) -> list[EpisodeUpdate]:
        """End every open episode (end of the stream)."""
        updates = [self._close(t) for t in VISUAL_EVENT_TYPES if t in self._open]
        self._pending.clear()
        return updates

    def open_key_frames(self) -> dict[str, tuple[str, FrameHit]]:
        """Event type and current key frame of each open episode, by event id (no copies: read, don't change)."""
        return {ep.event_id: (ep.event_type, ep.frames[ep.key_index]) for ep in self._open.values()}

    def has_open(self) -> bool:
        """Whether any episode is open."""
        return bool(self._open)

    def open_episodes(self) -> list[Episode]:
        """Snapshots of the episodes still open."""
        return [self._open[t].snapshot() for t in VISUAL_EVENT_TYPES if t in self._open]

    def _begin(self, event_type: str, hit: FrameHit) -> list[EpisodeUpdate]:
        pending = self._pending.get(event_type)
        if pending is None:
            pending = _Pending([], self._last_image_id)
            self._pending[event_type] = pending
        pending.hits.append(hit)
        pending.misses = 0
        if len(pending.hits) < self.params.min_frames.get(event_type, 1):
            return []
        del self._pending[event_type]
        first = pending.hits[0]
        episode = Episode(
            event_id=f"{self.camera_id}-{event_type}-{first.seq:06d}",
            event_type=event_type,
            camera_id=self.camera_id,
            frames=list(pending.hits),
            previous_image_id=pending.previous_image_id,
        )
        episode.key_index = _key_index(episode.frames)
        self._open[event_type] = episode
        self._silence[event_type] = 0
        self._since_update[event_type] = 0
        return [EpisodeUpdate("start", episode.snapshot())]

    def _miss_pending(self, event_type: str) -> None:
        pending = self._pending.get(event_type)
        if pending is None:
            return
        pending.misses += 1
        if pending.misses > self.params.start_gap:
            del self._pending[event_type]

    def _continue(self, event_type: str, hit: FrameHit | None) -> list[EpisodeUpdate]:
        episode = self._open[event_type]
        if hit is None:
            self._silence[event_type] += 1
            if self._silence[event_type] >= self.params.end_after.get(event_type, 3):
                return [self._close(event_type)]
            return []
        self._silence[event_type] = 0
        episode.frames.append(hit)
        if hit.score > episode.frames[episode.key_index].score:
            episode.key_index = len(episode.frames) - 1
        self._since_update[event_type] += 1
        if self._since_update[event_type] >= self.params.update_every:
            self._since_update[event_type] = 0
            return [EpisodeUpdate("update", episode.snapshot())]
        return []

    def _close(self, event_type: str) -> EpisodeUpdate:
        episode = self._open.pop(event_type)
        episode.status = "closed"
        self._silence.pop(event_type, None)
        self._since_update.pop(event_type, None)
        return EpisodeUpdate("end", episode.snapshot())


def _key_index(frames: list[FrameHit]) -> int:
    """Index of the highest-scoring frame, the earliest on ties."""
    best = 0
    for i, f in enumerate(frames):
        if f.score > frames[best].score:
            best = i
    return best
