"""What every detector returns and offers, and the factory that builds one by its config name.

Like Frigate's MotionDetector, the analyzer depends only on this interface, so detectors are swappable
(analysis.detector in config.yaml) and comparable on the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from image_pipeline.model import DETECTOR_NAMES, Box


@dataclass(frozen=True)
class Detection:
    """One event type seen in one frame, with a confidence and (for intrusion) full-resolution boxes."""

    type: str  # an EventType value (EventType is a StrEnum, so its members are these strings)
    score: float  # confidence in [0, 1]
    boxes: tuple[Box, ...] = ()


class Detector(Protocol):
    """A stateful per-camera detector: frames go in capture order, events come out."""

    def process(self, frame: np.ndarray, full_size: tuple[int, int] | None = None) -> list[Detection]:
        """Analyse one uint8 frame, BGR (h, w, 3) or gray (h, w), and return the events it shows.

        full_size is the camera frame's (width, height) when `frame` was decoded smaller; boxes are
        always in full-resolution pixels.
        """
        ...

    def difference_image(self) -> np.ndarray | None:
        """The last frame's uint8 difference at the detector's own resolution: a cheap copy to keep."""
        ...

    @property
    def last_difference(self) -> np.ndarray | None:
        """Full-resolution uint8 difference image of the last frame, or None before the first one."""
        ...


def decode_width(name: str) -> int | None:
    """How wide a frame the detector needs: JPEGs may be decoded down to that (None: full resolution).

    The blocks detector works at ~160 px wide, so it gets a 1/2, 1/4 or 1/8 decode; MOG2, the
    and KNN baselines work at full resolution as they are defined.
    """
    from image_pipeline.vision.detection import DetectorParams

    return DetectorParams().work_width if name == "blocks" else None


def detector_factory(name: str) -> Callable[[], Detector]:
    """Zero-argument constructor of the detector called name ("blocks", the default, "mog2" or "knn")."""
    # Imported here because detection.py and mog2.py import Detection from this module.
    from image_pipeline.vision.detection import CameraDetector
    from image_pipeline.vision.knn import KnnDetector
    from image_pipeline.vision.mog2 import Mog2Detector

    makers: dict[str, Callable[[], Detector]] = {"blocks": CameraDetector, "mog2": Mog2Detector,
                                                 "knn": KnnDetector}
    if name not in DETECTOR_NAMES or name not in makers:
        raise ValueError(f"unknown detector {name!r}; known detectors: {', '.join(DETECTOR_NAMES)}")
    return makers[name]
