"""Helpers of the camera wall and playback tests: stored frames with capture times, and episode records."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import Config
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.storage import atomic_write_json
from tests.web_support import image_bytes


def write_frame(cfg: Config, camera_id: str, seq: int, captured_at: float, image: np.ndarray | None = None,
                size: tuple[int, int] = (80, 60)) -> str:
    """Store one frame the way the receiver does (capture time in the file's mtime); returns its image id."""
    image_id = image_id_for(camera_id, seq)
    path = cfg.images_dir / camera_id / f"{image_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        path.write_bytes(image_bytes("jpg", size[0], size[1], seed=seq))
    else:
        ok, buf = cv2.imencode(".jpg", image)
        assert ok
        path.write_bytes(buf.tobytes())
    ns = round(captured_at * 1000) * 1_000_000
    os.utime(path, ns=(ns, ns))
    return image_id


def write_episode(cfg: Config, camera_id: str, event_type: str, number: int, first_seq: int, last_seq: int,
                  started_at: float, hits: dict[int, list[list[int]]] | None = None,
                  **extra: Any) -> dict[str, Any]:
    """An event record as the analyzer writes it, over frames first_seq..last_seq (hits: seq -> boxes)."""
    event_id = f"{camera_id}-{event_type}-{number:06d}"
    hits = hits if hits is not None else {first_seq: [[1, 1, 10, 10]]}
    frames = [{"image_id": image_id_for(camera_id, s), "seq": s, "score": 0.9, "boxes": b}
              for s, b in sorted(hits.items())]
    record: dict[str, Any] = {
        "event_id": event_id, "event_type": event_type, "camera_id": camera_id, "status": "closed",
        "score": 0.9, "first_seq": first_seq, "last_seq": last_seq, "frame_count": len(frames),
        "started_at": started_at, "ended_at": started_at + max(1, last_seq - first_seq) * 0.2,
        "frames": frames, "paths": {}, **extra,
    }
    atomic_write_json(cfg.events_dir / f"{event_id}.json", record, fsync=False)
    return record
