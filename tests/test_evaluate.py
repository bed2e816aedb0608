"""Evaluation: the quality bar on seeds that were never used for tuning."""

from __future__ import annotations

import numpy as np
import pytest

from image_pipeline.config import PROJECT_ROOT
from image_pipeline.sim.evaluate import HOLDOUT_SEEDS, TUNING_SEEDS, evaluate_scenario
from image_pipeline.sim.score import combine
from image_pipeline.sim.synthesis import load_backgrounds

TEST_SEEDS = (7001, 7002, 7003)  # neither tuning nor the suite's hold-out seeds


def test_test_seeds_are_unseen() -> None:
    assert not set(TEST_SEEDS) & (set(TUNING_SEEDS) | set(HOLDOUT_SEEDS))


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    return load_backgrounds(PROJECT_ROOT / "image_original")


def test_quality_bar_on_unseen_seeds(backgrounds: list[np.ndarray]) -> None:
    reports = [
        evaluate_scenario(7001, 3, 110, (320, 240), 1.0, backgrounds),
        evaluate_scenario(7002, 3, 110, (320, 240), 2.0, backgrounds),
        evaluate_scenario(7003, 2, 110, (640, 480), 0.5, backgrounds),
    ]
    rep = combine(reports)
    for kind in ("intrusion", "tamper", "scene_change"):
        s = rep.types[kind]
        assert s.true_episodes >= 8, kind
        assert s.recall is not None and s.recall >= 0.95, (kind, rep.format_table())
        assert s.precision is not None and s.precision >= 0.95, (kind, rep.format_table())
    assert rep.spurious_intrusions == 0, rep.format_table()
