"""Property: no uint8 frame sequence makes a detector raise, return nonsense or lose its footing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_pipeline.model import DETECTOR_NAMES, EVENT_TYPES
from image_pipeline.vision.detector import Detection, Detector, detector_factory

MAX_SIDE = 10000  # the image limits allow any side from 1 to 10000 px
# Degenerate shapes the limits allow: single pixels, single rows and columns at full length.
EDGE_SIZES = [(1, 1), (MAX_SIDE, 1), (1, MAX_SIDE), (2, MAX_SIDE), (MAX_SIDE, 3), (7, 5)]
CONTENTS = ("black", "white", "constant", "noise", "scene")


@dataclass(frozen=True)
class FrameSpec:
    """A frame to build: (width, height), gray or BGR, what it shows, and a seed for its randomness."""

    size: tuple[int, int]
    color: bool
    content: str
    seed: int


def build(spec: FrameSpec) -> np.ndarray:
    """The uint8 frame a spec describes."""
    w, h = spec.size
    shape = (h, w, 3) if spec.color else (h, w)
    rng = np.random.default_rng(spec.seed)
    if spec.content == "black":
        return np.zeros(shape, np.uint8)
    if spec.content == "white":
        return np.full(shape, 255, np.uint8)
    if spec.content == "constant":
        return np.full(shape, int(rng.integers(0, 256)), np.uint8)
    if spec.content == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return scene_frame(shape, spec.seed, rng)


def scene_frame(shape: tuple[int, ...], seed: int, rng: np.random.Generator) -> np.ndarray:
    """A textured static view (fixed by the seed's low bits) plus fresh sensor noise."""
    base = np.random.default_rng(seed % 4).integers(40, 200, shape, dtype=np.uint8)
    noisy = base.astype(np.int16) + rng.integers(-3, 4, shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


small_sizes = st.tuples(st.integers(1, 96), st.integers(1, 96))
sizes = st.one_of(st.sampled_from(EDGE_SIZES), small_sizes, st.sampled_from([(320, 240), (160, 90), (90, 160)]))


@st.composite
def frame_sequences(draw: st.DrawFn) -> list[FrameSpec]:
    """A few frame sizes, then frames that switch between them, with any content and channel count."""
    pool = draw(st.lists(sizes, min_size=1, max_size=3))
    specs = st.builds(FrameSpec, st.sampled_from(pool), st.booleans(), st.sampled_from(CONTENTS),
                      st.integers(0, 2**16))
    return draw(st.lists(specs, min_size=1, max_size=12))


def check(found: list[Detection], frame: np.ndarray, detector: Detector) -> None:
    """Each detection is a known type with a score in [0, 1] and boxes inside the frame."""
    h, w = frame.shape[:2]
    for det in found:
        assert det.type in EVENT_TYPES
        assert 0.0 <= det.score <= 1.0
        for x, y, bw, bh in det.boxes:
            assert x >= 0 and y >= 0 and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h, (det, frame.shape)
    diff = detector.last_difference
    assert diff is not None and diff.shape == (h, w) and diff.dtype == np.uint8


def normal_frames(count: int) -> list[np.ndarray]:
    """A plain camera: one textured 320x240 view with sensor noise."""
    return [scene_frame((240, 320, 3), 1, np.random.default_rng(1000 + i)) for i in range(count)]


@pytest.mark.parametrize("name", DETECTOR_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sequence=frame_sequences())
def test_any_frame_sequence_gives_valid_detections_and_leaves_the_detector_usable(
        name: str, sequence: list[FrameSpec]) -> None:
    detector = detector_factory(name)()
    for spec in sequence:
        frame = build(spec)
        check(detector.process(frame), frame, detector)
    for frame in normal_frames(6):
        check(detector.process(frame), frame, detector)


def replay(name: str, specs: list[FrameSpec]) -> list[tuple[list[Detection], bytes]]:
    """A fresh detector's detections and difference image for each frame of specs."""
    detector = detector_factory(name)()
    out = []
    for spec in specs:
        found = detector.process(build(spec))
        diff = detector.last_difference
        out.append((found, b"" if diff is None else diff.tobytes()))
    return out


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_detectors_are_deterministic_on_wild_input(name: str) -> None:
    contents = ["noise", "noise", "noise", "black", "white", "scene", "noise", "scene", "constant"]
    specs = [FrameSpec((64, 48), True, c, seed) for seed, c in enumerate(contents)]
    specs += [FrameSpec((1, MAX_SIDE), False, "noise", 9), FrameSpec((64, 48), True, "scene", 10)]
    assert replay(name, specs) == replay(name, specs)
