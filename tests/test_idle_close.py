"""On a real broker: a camera that stops mid-episode gets its episode closed after idle_close_s."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from devtools.runner import PipelineProcesses
from image_pipeline.kafka.clients import make_producer
from image_pipeline.records.imagedb import ImageAnnouncer
from image_pipeline.sim.synthesis import load_backgrounds, single_happening, synthesize_camera
from image_pipeline.vision.imaging import encode_jpeg
from tests.conftest import make_pipeline_config
from tests.pipeline_support import topic_values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_a_camera_that_stops_mid_episode_has_it_closed(tmp_path: Path, kafka_bootstrap: str) -> None:
    base = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    cfg = dataclasses.replace(base, analysis=dataclasses.replace(base.analysis, idle_close_s=2.0))
    backgrounds = load_backgrounds(Path(__file__).resolve().parent.parent / "image_original")
    # The walker enters at frame 12 and would stay 40 frames; the camera dies at frame 30.
    script = single_happening("intrusion", "cam-dies", 12, 40, 7)
    producer = make_producer(cfg, "test-idle")
    announcer = ImageAnnouncer(cfg, producer, fsync=False)
    began = time.time()
    for sf in synthesize_camera("cam-dies", 30, 7, (320, 240), backgrounds, script=script):
        announcer.store_and_announce("cam-dies", sf.seq, encode_jpeg(sf.image, 90), 320, 240, "synthetic",
                                     captured_at=began + sf.seq / 10)
    producer.flush()
    producer.close()
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        analyzer = procs.start("analyzer")
        deadline = time.monotonic() + 90
        phases: list[str] = []
        while time.monotonic() < deadline and "end" not in phases:
            phases = [v["phase"] for v in topic_values(cfg, cfg.topics.events.name)]
            time.sleep(0.5)
        codes = procs.stop_all()
    assert phases[0] == "start" and phases[-1] == "end", (phases, analyzer.output()[-2000:])
    assert codes == {"analyzer-0": 0}
    records = [json.loads(p.read_text()) for p in cfg.events_dir.glob("*.json")]
    assert [r["status"] for r in records] == ["closed"]
    assert "sent no frame for" in analyzer.output()
