"""The benchmark's in-memory ceiling: every stage's per-image work back to back in one process.

No Kafka and no disk: synthesize, JPEG-encode, decode (with the pipeline's validation) and analyze
(detector plus episode tracker), timed per stage in CPU time, and the whole in wall-clock time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import LimitsConfig
from image_pipeline.sim.synthesis import camera_ids, synthesize_camera
from image_pipeline.vision.detection import CameraDetector
from image_pipeline.vision.detector import decode_width
from image_pipeline.vision.episodes import EpisodeTracker
from image_pipeline.vision.imaging import decode_at_least, encode_jpeg

STAGES = ("synthesize", "encode", "decode", "analyze")


@dataclass
class Ceiling:
    """What one in-memory pass over C cameras x N frames cost."""

    size: tuple[int, int]
    images: int = 0
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def ips(self) -> float:
        """Images per second, wall clock, one process."""
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms(self) -> dict[str, float]:
        """CPU milliseconds per image by stage, plus the total."""
        per = {k: 1000.0 * v / max(self.images, 1) for k, v in self.cpu_s.items()}
        per["total"] = sum(per.values())
        return per

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        cpu = self.cpu_ms
        return {
            "size": f"{self.size[0]}x{self.size[1]}",
            "images": self.images,
            "ips": round(self.ips, 2),
            "cpu_ips": round(1000.0 / cpu["total"], 2) if cpu["total"] > 0 else 0.0,
            "cpu_ms_per_image": {k: round(v, 3) for k, v in cpu.items()},
        }


def measure_ceiling(size: tuple[int, int], cameras: int, frames: int, seed: int,
                    backgrounds: list[np.ndarray], quality: int, limits: LimitsConfig) -> Ceiling:
    """Run every stage on every frame back to back, on one core (OpenCV limited to one thread)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    result = Ceiling(size)
    try:
        streams = [(synthesize_camera(cam, frames, seed, size, backgrounds), CameraDetector(), EpisodeTracker(cam))
                   for cam in camera_ids(cameras)]
        clock = time.process_time
        width = decode_width("blocks")
        began = time.perf_counter()
        for _ in range(frames):
            for stream, detector, tracker in streams:
                t0 = clock()
                frame = next(stream)
                t1 = clock()
                data = encode_jpeg(frame.image, quality)
                t2 = clock()
                image, info = decode_at_least(data, limits, width)  # as the analyzer decodes
                t3 = clock()
                detections = detector.process(image, (info.width, info.height))
                tracker.observe(f"{frame.camera_id}-{frame.seq:08d}", frame.seq, time.time(), detections)
                t4 = clock()
                for stage, spent in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    result.cpu_s[stage] += spent
                result.images += 1
        result.wall_s = time.perf_counter() - began
    finally:
        cv2.setNumThreads(threads)
    return result
