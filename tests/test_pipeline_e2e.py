"""The whole chain on the real broker: receiver, analyzer and alerter as separate processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.runner import count_outputs
from image_pipeline.config import Config
from image_pipeline.sim.score import score_dirs
from image_pipeline.storage import leftover_temp_files
from tests.pipeline_support import alert_ids, alertable, event_records, run_reference, topic_values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.parametrize(
    ("cameras", "frames", "seed", "size", "noise"),
    [(2, 120, 23, "640x480", "1.0"), (3, 100, 404, "320x240", "2.0")],
    ids=["640x480-noise1", "320x240-noise2"],
)
def test_whole_chain_meets_the_quality_bar(
    pipeline_config: Config, tmp_path: Path, cameras: int, frames: int, seed: int, size: str, noise: str
) -> None:
    cfg = pipeline_config
    run_reference(cfg, tmp_path / "run", "--cameras", str(cameras), "--frames", str(frames), "--fps", "0",
                  "--seed", str(seed), "--size", size, "--noise", noise)

    counts = count_outputs(cfg)
    assert counts["images"] == cameras * frames
    truth_rows = (cfg.images_dir / "ground_truth.jsonl").read_text().splitlines()
    assert len(truth_rows) == cameras * frames

    report = score_dirs(cfg.images_dir, cfg.events_dir).to_dict()
    for kind in ("intrusion", "tamper", "scene_change"):
        assert report["types"][kind]["recall"] >= 0.95, report
        assert report["types"][kind]["precision"] >= 0.95, report
    assert report["spurious_intrusions"] == 0, report

    records = event_records(cfg)
    assert alert_ids(cfg) == alertable(cfg, records)
    for event_id in alert_ids(cfg):
        alert = json.loads((cfg.alerts_dir / f"{event_id}.json").read_text())
        assert alert["alertees"], alert
        for rel in alert["paths"].values():
            assert (cfg.data_dir / rel).exists(), rel
    assert leftover_temp_files(cfg.images_dir, cfg.events_dir, cfg.alerts_dir) == []

    # Every event went through the lifecycle on the events topic; one alert message per alert file.
    phases: dict[str, set[str]] = {}
    for value in topic_values(cfg, cfg.topics.events.name):
        phases.setdefault(value["event_id"], set()).add(value["phase"])
    assert set(phases) == set(records)
    assert all("start" in p for p in phases.values())
    alert_messages = [v["event_id"] for v in topic_values(cfg, cfg.topics.alerts.name)]
    assert sorted(set(alert_messages)) == alert_ids(cfg)


def test_one_person_crossing_gives_one_event_not_fifty(pipeline_config: Config, tmp_path: Path) -> None:
    cfg = pipeline_config
    run_reference(cfg, tmp_path / "run", "--cameras", "1", "--frames", "100", "--fps", "0", "--seed", "5",
                  "--size", "320x240")
    truth: dict[str, set[int]] = {}
    for line in (cfg.images_dir / "ground_truth.jsonl").read_text().splitlines():
        row = json.loads(line)
        for item in row["truth"]:
            if item["type"] == "intrusion":
                truth.setdefault(item["episode_id"], set()).add(row["seq"])
    intrusions = [r for r in event_records(cfg).values() if r["event_type"] == "intrusion"]
    assert truth, "the script has at least one intrusion"
    assert len(intrusions) == len(truth)
    for record in intrusions:
        assert record["frame_count"] >= 5
