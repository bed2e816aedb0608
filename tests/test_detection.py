"""Detection: one scripted happening per scene, JPEG round trip, known answers."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from image_pipeline.config import PROJECT_ROOT
from image_pipeline.sim.score import iou
from image_pipeline.sim.synthesis import Happening, SynthFrame, load_backgrounds, single_happening, synthesize_camera
from image_pipeline.vision.detection import CameraDetector, Detection
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
