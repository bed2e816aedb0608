"""Detection: one scripted happening per scene, JPEG round trip, known answers."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from image_pipeline.config import PROJECT_ROOT
from image_pipeline.model import DETECTOR_NAMES, EVENT_TYPES, EventType
from image_pipeline.sim.score import iou
from image_pipeline.sim.synthesis import Happening, SynthFrame, load_backgrounds, single_happening, synthesize_camera
from image_pipeline.vision.detection import CameraDetector, Detection, DetectorParams, work_geometry
from image_pipeline.vision.detector import detector_factory
from image_pipeline.vision.episodes import EpisodeTracker
from image_pipeline.vision.imaging import encode_jpeg

SIZE = (320, 240)


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    return load_backgrounds(PROJECT_ROOT / "image_original")


def run(script: list[Happening], frames: int, seed: int, backgrounds: list[np.ndarray],
        size: tuple[int, int] = SIZE) -> tuple[list[SynthFrame], list[list[Detection]], list[dict[str, Any]]]:
    """Frames, per-frame detections and final episode records of one synthetic camera."""
    detector = CameraDetector()
    tracker = EpisodeTracker("cam-01")
    synth, dets, records = [], [], {}
    for sf in synthesize_camera("cam-01", frames, seed, size, backgrounds, script=script):
        decoded = cv2.imdecode(np.frombuffer(encode_jpeg(sf.image, 90), np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None, f"frame {sf.seq} did not decode"
        found = detector.process(decoded)
        synth.append(sf)
        dets.append(found)
        for up in tracker.observe(f"cam-01-{sf.seq:08d}", sf.seq, sf.seq / 10, found):
            records[up.episode.event_id] = up.episode.to_record()
    for up in tracker.finish():
        records[up.episode.event_id] = up.episode.to_record()
    return synth, dets, list(records.values())


def truth_span(frames: list[SynthFrame]) -> tuple[int, int]:
    seqs = [f.seq for f in frames if f.truth]
    return min(seqs), max(seqs)


def overlaps(record: dict[str, Any], span: tuple[int, int]) -> bool:
    return record["first_seq"] <= span[1] and record["last_seq"] >= span[0]


@pytest.mark.parametrize("seed", [21, 22])
def test_intrusion_gives_one_event_with_a_box_matching_the_figure(seed: int, backgrounds: list[np.ndarray]) -> None:
    script = single_happening("intrusion", "cam-01", 12, 28, seed)
    frames, _, records = run(script, 52, seed, backgrounds)
    assert [r["event_type"] for r in records] == ["intrusion"]
    assert overlaps(records[0], truth_span(frames))
    truth = {f.seq: [t.bbox for t in f.truth if t.bbox] for f in frames}
    best = max(iou(tuple(box), tb) for fr in records[0]["frames"] for box in fr["boxes"]
               for tb in truth.get(fr["seq"], []))
    assert best >= 0.5


@pytest.mark.parametrize(("seed", "mode"), [(31, "cover"), (32, "blur")])
def test_tamper_gives_one_tamper_event_and_no_other_type(seed: int, mode: str,
                                                         backgrounds: list[np.ndarray]) -> None:
    hap = single_happening("tamper", "cam-01", 12, 14, seed)[0]
    script = [Happening(hap.type, hap.episode_id, hap.start, hap.length, {**hap.params, "mode": mode})]
    frames, _, records = run(script, 45, seed, backgrounds)
    assert [r["event_type"] for r in records] == ["tamper"]
    assert overlaps(records[0], truth_span(frames))


def test_scene_change_gives_one_event_then_rebaselines(backgrounds: list[np.ndarray]) -> None:
    script = single_happening("scene_change", "cam-01", 12, 4, 41)
    frames, dets, records = run(script, 50, 41, backgrounds)
    assert [r["event_type"] for r in records] == ["scene_change"]
    assert overlaps(records[0], truth_span(frames))
    assert all(not d for d in dets[25:])  # the new view became the reference


@pytest.mark.parametrize(("seed", "brighten"), [(51, False), (52, True)])
def test_lighting_change_is_reported_and_raises_no_intrusion(seed: int, brighten: bool,
                                                             backgrounds: list[np.ndarray]) -> None:
    hap = single_happening("lighting_change", "cam-01", 12, 2, seed)[0]
    script = [Happening(hap.type, hap.episode_id, hap.start, hap.length, {**hap.params, "brighten": brighten})]
    frames, dets, records = run(script, 40, seed, backgrounds)
    assert not any(d.type == "intrusion" for ds in dets for d in ds)
    assert [r["event_type"] for r in records] == ["lighting_change"]
    assert overlaps(records[0], truth_span(frames))


def test_quiet_stretch_gives_no_events(backgrounds: list[np.ndarray]) -> None:
    for size in (SIZE, (640, 480)):
        _, dets, records = run([], 40, 61, backgrounds, size)
        assert records == [] and all(not d for d in dets)


def test_detector_state_is_a_function_of_the_frames(backgrounds: list[np.ndarray]) -> None:
    script = single_happening("intrusion", "cam-01", 5, 20, 71)
    frames = [f.image for f in synthesize_camera("cam-01", 30, 71, SIZE, backgrounds, script=script)]
    a, b = CameraDetector(), CameraDetector()
    assert [a.process(f) for f in frames] == [b.process(f) for f in frames]
    diff = a.last_difference
    assert diff is not None and diff.shape == (SIZE[1], SIZE[0]) and diff.dtype == np.uint8


# Robustness regressions: explicit frames, kept from the bug report and from the fuzz test's findings.

def noise_frame(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Uniform random uint8 content."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_black_frame_after_noise_frames_is_a_lighting_change_not_a_crash() -> None:
    # This raised ZeroDivisionError (brightness gain 0). A pure-noise view has no texture for the tamper
    # test to miss, so in the classification order the blackout is the next thing: a lighting change.
    detector = CameraDetector()
    for seed in range(3):
        assert detector.process(noise_frame((240, 320, 3), seed)) == []
    assert detector.process(np.zeros((240, 320, 3), np.uint8)) == [Detection(EventType.LIGHTING_CHANGE, 1.0)]


def test_one_pixel_frames_black_white_black_do_not_crash() -> None:
    # Found by tests/test_detector_fuzz.py: the same zero gain, reached on 1x1 frames, gray and BGR mixed.
    detector = CameraDetector()
    for frame in (np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8),
                  np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)):
        found = detector.process(frame)
        assert all(d.type in EVENT_TYPES and 0.0 <= d.score <= 1.0 for d in found)


def test_black_frame_after_a_textured_view_is_tamper(backgrounds: list[np.ndarray]) -> None:
    view = cv2.resize(backgrounds[0], SIZE, interpolation=cv2.INTER_AREA)
    detector = CameraDetector()
    for seed in range(8):
        jitter = np.random.default_rng(seed).integers(-3, 4, view.shape, dtype=np.int16)
        assert detector.process(np.clip(view + jitter, 0, 255).astype(np.uint8)) == []
    assert [d.type for d in detector.process(np.zeros_like(view))] == [EventType.TAMPER]


def test_a_camera_moved_while_covered_is_a_scene_change_not_tamper_for_good(backgrounds: list[np.ndarray]) -> None:
    # Once, tamper ended only when the old view came back: uncovered onto a new view, it never ended.
    def jittered(view: np.ndarray, seed: int) -> np.ndarray:
        noise = np.random.default_rng(seed).integers(-3, 4, view.shape, dtype=np.int16)
        return np.clip(view + noise, 0, 255).astype(np.uint8)

    first, second = (cv2.resize(b, SIZE, interpolation=cv2.INTER_AREA) for b in (backgrounds[0], backgrounds[1]))
    detector = CameraDetector()
    for seed in range(8):
        detector.process(jittered(first, seed))
    covered = [detector.process(np.zeros_like(first)) for _ in range(5)]
    assert all([d.type for d in found] == [EventType.TAMPER] for found in covered)
    after = [[d.type for d in detector.process(jittered(second, 100 + i))] for i in range(30)]
    assert [EventType.SCENE_CHANGE] in after, after
    assert after[-10:] == [[]] * 10, "the new view is learned and the camera is quiet again"


def test_gray_frames_give_the_same_detections_as_their_bgr_copies(backgrounds: list[np.ndarray]) -> None:
    # Gray (h, w) frames used to be resized into the BGR buffer's place and lost: the detector saw black.
    script = single_happening("intrusion", "cam-01", 5, 20, 71)
    grays = [cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY)
             for f in synthesize_camera("cam-01", 30, 71, SIZE, backgrounds, script=script)]
    gray_detector, bgr_detector = CameraDetector(), CameraDetector()
    from_gray = [gray_detector.process(g) for g in grays]
    assert from_gray == [bgr_detector.process(cv2.merge([g, g, g])) for g in grays]
    assert any(d.type == EventType.INTRUSION for ds in from_gray for d in ds)


@pytest.mark.parametrize(("size", "work", "grid"), [
    ((320, 240), (160, 120), (8, 6)), ((640, 480), (160, 120), (8, 6)), ((1280, 720), (160, 90), (8, 5)),
    ((1, 10000), (8, 32), (8, 32)), ((10000, 1), (160, 8), (8, 3)), ((1, 1), (8, 8), (8, 8)),
    ((100, 10000), (100, 400), (8, 32)),
])
def test_work_size_is_unchanged_for_normal_frames_and_bounded_for_extreme_ones(
        size: tuple[int, int], work: tuple[int, int], grid: tuple[int, int]) -> None:
    assert work_geometry(size, DetectorParams()) == (work, grid)


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_extreme_shapes_alternating_content_and_size_changes_do_not_crash(name: str) -> None:
    detector = detector_factory(name)()
    shapes = [(1, 1, 3), (10000, 1, 3), (1, 10000), (10000, 1), (240, 320, 3), (7, 5), (240, 320)]
    for i, shape in enumerate(shapes * 2):
        for j, frame in enumerate((noise_frame(shape, i), np.zeros(shape, np.uint8), noise_frame(shape, i + 99),
                                   np.full(shape, 255, np.uint8), np.full(shape, 77, np.uint8))):
            found = detector.process(frame)
            assert all(d.type in EVENT_TYPES and 0.0 <= d.score <= 1.0 for d in found), (shape, j)
            diff = detector.last_difference
            assert diff is not None and diff.shape == shape[:2]
