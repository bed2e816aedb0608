"""The MOG2 baseline detector on synthetic frames, and the detector factory."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from image_pipeline.model import DETECTOR_NAMES, Box, EventType
from image_pipeline.sim.score import iou
from image_pipeline.vision.detection import CameraDetector
from image_pipeline.vision.detector import Detection, detector_factory
from image_pipeline.vision.knn import KnnDetector
from image_pipeline.vision.mog2 import Mog2Detector

SQUARE = 40


def background(size: tuple[int, int], seed: int = 5) -> np.ndarray:
    """A static textured BGR view: smoothed random blobs in mid greys."""
    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(50, 170, (max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The view with fresh sensor noise (+-3 grey levels)."""
    return np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape, dtype=np.int16), 0, 255).astype(np.uint8)


def square_run(detector: Mog2Detector | KnnDetector, size: tuple[int, int], still: int, moving: int,
               side: int = SQUARE) -> list[tuple[list[Detection], Box]]:
    """Feed still frames, then frames with a bright square walking right; (detections, square box) per moving frame."""
    rng = np.random.default_rng(11)
    view = background(size)
    for _ in range(still):
        detector.process(noisy(view, rng))
    out = []
    for i in range(moving):
        frame = noisy(view, rng)
        x, y = size[0] // 8 + i * side // 8, size[1] // 3
        frame[y:y + side, x:x + side] = 240
        out.append((detector.process(frame), (x, y, side, side)))
    return out


def best_iou(found: list[Detection], truth: Box) -> float:
    """Best overlap of any intrusion box with the truth box."""
    return max((iou(box, truth) for d in found if d.type == EventType.INTRUSION for box in d.boxes), default=0.0)


def test_moving_bright_square_is_boxed() -> None:
    run = square_run(Mog2Detector(), (320, 240), still=20, moving=8)
    for found, truth in run[1:]:  # from the second moving frame on, the square has a box of its own
        assert [d.type for d in found] == [EventType.INTRUSION]
        assert best_iou(found, truth) >= 0.3
        assert 0.0 <= found[0].score <= 1.0


def test_large_frame_is_analysed_downscaled_with_boxes_at_full_resolution() -> None:
    size = (2400, 1200)  # above MAX_WORK_PIXELS, so the model runs on a smaller copy
    detector = Mog2Detector()
    run = square_run(detector, size, still=20, moving=3, side=240)
    found, truth = run[-1]
    assert best_iou(found, truth) >= 0.3
    diff = detector.last_difference
    assert diff is not None and diff.shape == (size[1], size[0]) and diff.dtype == np.uint8


def test_static_scene_reports_nothing_after_warm_up() -> None:
    detector = Mog2Detector()
    rng = np.random.default_rng(12)
    view = background((320, 240))
    found = [detector.process(noisy(view, rng)) for _ in range(40)]
    assert all(not d for d in found[5:])
    diff = detector.last_difference
    assert diff is not None and diff.shape == (240, 320) and not diff.any()


def test_mog2_is_deterministic() -> None:
    a = square_run(Mog2Detector(), (160, 120), still=10, moving=5, side=20)
    b = square_run(Mog2Detector(), (160, 120), still=10, moving=5, side=20)
    assert a == b


def test_factory_builds_each_known_detector_afresh() -> None:
    assert isinstance(detector_factory("blocks")(), CameraDetector)
    assert isinstance(detector_factory("mog2")(), Mog2Detector)
    for name in DETECTOR_NAMES:
        make = detector_factory(name)
        assert make() is not make()  # one detector per camera: no shared state


def test_factory_rejects_an_unknown_name_and_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown detector 'gmg'") as info:
        detector_factory("gmg")
    assert all(name in str(info.value) for name in DETECTOR_NAMES)


def test_knn_baseline_boxes_the_moving_square_too() -> None:
    run = square_run(KnnDetector(), (320, 240), still=20, moving=8)
    for found, truth in run[1:]:
        assert [d.type for d in found] == [EventType.INTRUSION]
        assert best_iou(found, truth) >= 0.3
