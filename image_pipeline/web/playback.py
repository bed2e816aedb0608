"""An event's episode as playable frames: the stored frames in order with their boxes, drawn, or as an MP4.

Frame paths are never taken from the record: they are built from the record's camera id and sequence
numbers through the image database's own layout, and then checked by the data helpers.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import Config
from image_pipeline.errors import BadInputError
from image_pipeline.model import Box
from image_pipeline.records.events import annotate, image_path
from image_pipeline.records.imagedb import image_id_for, stored_capture_time
from image_pipeline.storage import UnsafePathError, check_camera_id
from image_pipeline.vision.imaging import decode, encode_jpeg
from image_pipeline.web.data import resolve_data_path, servable_url_path

MAX_PLAYBACK_FRAMES = 300  # frames of one episode shown or put in a clip
MAX_CLIP_OUTPUT_FRAMES = 600  # written frames, after repeating frames to keep capture pace
CLIP_FPS = 10
MIN_DELAY_S = 0.05  # frames captured faster than this (or all at once, as --fps 0 does) play at 20 fps
MAX_DELAY_S = 2.0  # a long gap between two frames plays as two seconds
PLAYBACK_JPEG_QUALITY = 80


@dataclass(frozen=True)
class PlayFrame:
    """One stored frame of an episode."""

    index: int
    image_id: str
    seq: int
    relpath: str  # relative to the data folder, checked to lie inside it
    captured_at: float
    boxes: tuple[Box, ...]
    delay_s: float  # how long to show it before the next, at capture pace

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"index": self.index, "image_id": self.image_id, "seq": self.seq, "captured_at": self.captured_at,
                "boxes": [list(b) for b in self.boxes], "delay_ms": round(self.delay_s * 1000)}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _boxes(frame: dict[str, Any]) -> tuple[Box, ...]:
    """The valid boxes of a record's frame: four non-negative ints each; anything else is dropped."""
    found = []
    for box in frame.get("boxes") or []:
        if isinstance(box, list) and len(box) == 4 and all(_int(v) is not None and v >= 0 for v in box):
            found.append((box[0], box[1], box[2], box[3]))
    return tuple(found)


def _episode_seqs(event: dict[str, Any], hits: dict[int, tuple[Box, ...]]) -> list[int]:
    """Every seq from the first to the last frame, or only the hit frames (evenly thinned) if that is too many."""
    first, last = _int(event.get("first_seq")), _int(event.get("last_seq"))
    if first is not None and last is not None and 0 <= last - first < MAX_PLAYBACK_FRAMES:
        return list(range(first, last + 1))
    seqs = sorted(hits)
    if len(seqs) > MAX_PLAYBACK_FRAMES:
        step = len(seqs) / MAX_PLAYBACK_FRAMES
        seqs = [seqs[int(i * step)] for i in range(MAX_PLAYBACK_FRAMES)]
    return seqs


def episode_frames(cfg: Config, event: dict[str, Any]) -> list[PlayFrame]:
    """The episode's stored frames in capture order (at most MAX_PLAYBACK_FRAMES); missing ones are skipped."""
    try:
        camera_id = check_camera_id(str(event.get("camera_id", "")))
    except UnsafePathError:
        return []
    hits: dict[int, tuple[Box, ...]] = {}
    for frame in event.get("frames") or []:
        if isinstance(frame, dict) and _int(frame.get("seq")) is not None:
            hits[frame["seq"]] = _boxes(frame)
    found: list[tuple[int, str, str, float]] = []
    for seq in _episode_seqs(event, hits):
        try:
            image_id = image_id_for(camera_id, seq)
            relpath = servable_url_path(cfg, image_path(cfg, camera_id, image_id))
        except UnsafePathError:
            continue
        if relpath is not None:
            found.append((seq, image_id, relpath, stored_capture_time(resolve_data_path(cfg, relpath))))
    frames = []
    for i, (seq, image_id, relpath, captured) in enumerate(found):
        gap = found[i + 1][3] - captured if i + 1 < len(found) else MIN_DELAY_S
        delay = min(MAX_DELAY_S, max(MIN_DELAY_S, gap))
        frames.append(PlayFrame(i, image_id, seq, relpath, captured, hits.get(seq, ()), delay))
    return frames


def _image(cfg: Config, frame: PlayFrame) -> np.ndarray | None:
    """The frame's pixels, decoded with the same limits as any incoming image."""
    try:
        return decode(resolve_data_path(cfg, frame.relpath).read_bytes(), cfg.limits)
    except (OSError, UnsafePathError, BadInputError):
        return None


def _label(event: dict[str, Any], frame: PlayFrame, total: int) -> str:
    return f"{event.get('event_type', '')} {frame.image_id} {frame.index + 1}/{total}"


def render_frame(cfg: Config, event: dict[str, Any], frames: list[PlayFrame], index: int) -> bytes | None:
    """One frame of the episode as JPEG with its boxes and a label drawn, or None if it is unreadable."""
    frame = frames[index]
    image = _image(cfg, frame)
    if image is None:
        return None
    return encode_jpeg(annotate(image, frame.boxes, _label(event, frame, len(frames))), PLAYBACK_JPEG_QUALITY)


def clip_fps(frames: list[PlayFrame]) -> float:
    """The clip's frame rate: CLIP_FPS, or faster when frames were captured faster than that."""
    delays = [f.delay_s for f in frames[:-1]]
    if not delays:
        return CLIP_FPS
    return float(min(1 / MIN_DELAY_S, max(CLIP_FPS, 1 / statistics.median(delays))))


def write_clip(cfg: Config, event: dict[str, Any], frames: list[PlayFrame]) -> tuple[bytes, int]:
    """The episode as MP4 bytes (mp4v) with boxes drawn, and the number of frames written."""
    fps = clip_fps(frames)
    size: tuple[int, int] | None = None
    written = 0
    with tempfile.TemporaryDirectory(prefix="clip-") as folder:
        path = Path(folder) / "clip.mp4"
        writer: Any = None
        try:
            for frame in frames:
                image = _image(cfg, frame)
                if image is None:
                    continue
                if size is None:
                    size = (image.shape[1], image.shape[0])
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise RuntimeError("OpenCV could not open an mp4v VideoWriter")
                if (image.shape[1], image.shape[0]) != size:
                    image = cv2.resize(image, size)
                drawn = annotate(image, frame.boxes, _label(event, frame, len(frames)))
                for _ in range(max(1, round(frame.delay_s * fps))):
                    if written >= MAX_CLIP_OUTPUT_FRAMES:
                        break
                    writer.write(drawn)
                    written += 1
        finally:
            if writer is not None:
                writer.release()
        return (path.read_bytes() if written else b""), written
