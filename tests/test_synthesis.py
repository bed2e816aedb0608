"""Synthesis: determinism, scripts and ground truth."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from image_pipeline.config import PROJECT_ROOT
from image_pipeline.model import VISUAL_EVENT_TYPES
from image_pipeline.sim.synthesis import (
    GAP,
    camera_ids,
    load_backgrounds,
    plan_script,
    single_happening,
    synthesize_camera,
)

SIZE = (320, 240)


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    return load_backgrounds(PROJECT_ROOT / "image_original")


def test_camera_ids_are_numbered_from_one() -> None:
    assert camera_ids(3) == ["cam-01", "cam-02", "cam-03"]


def test_load_backgrounds_names_the_folder_when_empty(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_backgrounds(tmp_path)


def test_same_seed_gives_identical_images_and_truth(backgrounds: list[np.ndarray]) -> None:
    a = list(synthesize_camera("cam-02", 70, 5, SIZE, backgrounds))
    b = list(synthesize_camera("cam-02", 70, 5, SIZE, backgrounds))
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert [x.truth for x in a] == [y.truth for y in b]
    c = list(synthesize_camera("cam-02", 70, 6, SIZE, backgrounds))
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("frames", [100, 150, 400])
def test_script_has_every_happening_type_when_frames_at_least_100(frames: int) -> None:
    for seed in range(20):
        for cam in camera_ids(4):
            script = plan_script(cam, frames, seed)
            assert {h.type for h in script} >= set(VISUAL_EVENT_TYPES), (seed, cam)
            assert script[0].start >= 10
            for prev, nxt in itertools.pairwise(script):
                assert nxt.start - prev.end >= GAP[0]  # quiet stretch between happenings
            assert script[-1].end <= frames


def test_short_runs_keep_only_what_fits() -> None:
    script = plan_script("cam-01", 45, 3)
    assert 1 <= len(script) < 4
    assert script[-1].end <= 45
    assert plan_script("cam-01", 15, 3) == []


def test_sensor_noise_scales_with_noise_parameter(backgrounds: list[np.ndarray]) -> None:
    def spread(noise: float) -> float:
        frames = list(synthesize_camera("cam-01", 4, 1, SIZE, backgrounds, noise, script=[]))
        return float(np.std(frames[3].image.astype(np.float32) - frames[2].image.astype(np.float32)))

    quiet, loud = spread(0.5), spread(2.0)
    assert 1.0 < quiet < 4.0
    assert loud > 3 * quiet


def test_intrusion_truth_has_a_clipped_box_per_visible_figure(backgrounds: list[np.ndarray]) -> None:
    script = single_happening("intrusion", "cam-01", 5, 30, 11)
    frames = list(synthesize_camera("cam-01", 40, 11, SIZE, backgrounds, script=script))
    boxed = [f for f in frames if f.truth]
    assert boxed and all(5 <= f.seq < 35 for f in boxed)
    for f in boxed:
        for item in f.truth:
            assert item.type == "intrusion" and item.episode_id == "cam-01-ep01"
            assert item.bbox is not None
            x, y, w, h = item.bbox
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= SIZE[0] and y + h <= SIZE[1]
    assert frames[boxed[0].seq - 1].truth == []
    assert boxed[0].truth[0].to_dict()["bbox"] == list(boxed[0].truth[0].bbox or ())


@pytest.mark.parametrize("kind", ["tamper", "scene_change", "lighting_change"])
def test_non_intrusion_truth_covers_the_span_without_boxes(kind: str, backgrounds: list[np.ndarray]) -> None:
    length = {"tamper": 10, "scene_change": 4, "lighting_change": 2}[kind]
    script = single_happening(kind, "cam-01", 6, length, 2)
    frames = list(synthesize_camera("cam-01", 20, 2, SIZE, backgrounds, script=script))
    spans = [f.seq for f in frames if f.truth]
    assert spans == list(range(6, 6 + length))
    assert all(t.bbox is None and t.type == kind for f in frames for t in f.truth)
