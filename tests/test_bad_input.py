"""Every input that once stopped a consumer, sent on a real broker; then a normal run must still give its events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from devtools.runner import PipelineProcesses
from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import DeadLetter, EventMessage
from image_pipeline.records.imagedb import ImageAnnouncer
from tests.conftest import make_pipeline_config
from tests.pipeline_support import event_records, topic_values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def send_bad_inputs(cfg: Config) -> dict[str, int]:
    """Publish every bad input of the stage-runner issue; returns how many went to each topic."""
    producer = make_producer(cfg, "test-bad-input")
    announcer = ImageAnnouncer(cfg, producer, fsync=False)
    rng = np.random.default_rng(5)
    # Night falls on one camera: three noise frames, then an all-black one (once a ZeroDivisionError).
    for seq in range(3):
        noise = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        announcer.store_and_announce("cam-night", seq, png(noise), 160, 120, "directory", ext="png")
    announcer.store_and_announce("cam-night", 3, png(np.zeros((120, 160, 3), np.uint8)), 160, 120,
                                 "directory", ext="png")
    valid: dict[str, Any] = {"schema": "image", "version": 1, "image_id": "cam-bad-00000001", "camera_id": "cam-bad",
                             "seq": 1, "path": "cam-bad/cam-bad-00000001.jpg", "width": 16, "height": 16,
                             "captured_at": 1000.0, "source": "synthetic"}
    announcer.store("cam-bad", "x", png(np.zeros((16, 16, 3), np.uint8)), 1000.0, ext="jpg")
    images = [
        b"[" * 200_000 + b"]" * 200_000,  # nested 200,000 deep
        json.dumps({**valid, "seq": 0}).encode().replace(b'"seq": 0', b'"seq": ' + b"9" * 5000),  # 5,000 digits
        json.dumps({**valid, "path": "cam-bad/x.jpg/y.jpg"}).encode(),  # runs through a file
        json.dumps({**valid, "path": "cam-bad/" + "a" * 300 + ".jpg"}).encode(),  # a 300-character name
        b'{"schema": "image", "junk": "' + b"z" * 790_000 + b'"}',  # ~790 KB: its dead letter must still fit
    ]
    for value in images:
        producer.send(cfg.topics.images.name, key=b"cam-bad", value=value)
    event = EventMessage("start", "cam-bad-intrusion-000001", "intrusion", "cam-bad", 0.9, "cam-bad-00000001",
                         "cam-bad-00000001", "cam-bad-00000001", 1, "image_event_database/x.json", 1000.0).to_dict()
    events = [json.dumps({**event, "captured_at": when}).encode() for when in ("soon", 1e300)]
    for value in events:
        producer.send(cfg.topics.events.name, key=b"cam-bad", value=value)
    producer.flush()
    producer.close()
    return {"images": len(images), "events": len(events)}


def test_no_input_stops_a_consumer_and_a_normal_run_still_gives_its_events(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        for role in ("alerter", "analyzer", "thumbnails"):
            procs.start(role)
        sent = send_bad_inputs(cfg)
        receiver = procs.run("receiver", "--cameras", "2", "--frames", "60", "--seed", "4", "--size", "320x240",
                             "--fps", "0", timeout=300)
        assert receiver.process.returncode == 0, receiver.output()
        assert procs.wait_drained(timeout=180), "the pipeline did not drain"
        running = {c.log_path.stem: c.process.poll() for c in procs.clients if c.role != "receiver"}
        assert running == dict.fromkeys(running), f"a consumer died: {running}"
        codes = procs.stop_all()
        # A restart after it all is clean: nothing left to redo, nothing new refused.
        restarted = [procs.start(role, "--until-idle", "2") for role in ("analyzer", "alerter", "thumbnails")]
        for again in restarted:
            assert again.process.wait(timeout=120) == 0, again.output()
    assert {k: v for k, v in codes.items() if not k.startswith("receiver")} == {
        "alerter-0": 0, "analyzer-0": 0, "thumbnails-0": 0}
    letters = [DeadLetter.from_dict(v) for v in topic_values(cfg, cfg.topics.dead_letter.name)]
    by_client = {c: sum(1 for letter in letters if letter.client == c) for c in ("image-analysis", "image-thumbnails",
                                                                                  "image-alert")}
    assert by_client == {"image-analysis": sent["images"], "image-thumbnails": sent["images"],
                         "image-alert": sent["events"]}, [(x.client, x.error) for x in letters]
    assert all(letter.error for letter in letters)
    assert any(letter.truncated for letter in letters), "the 790 KB record was kept as prefix, length and hash"
    records = event_records(cfg)
    assert any(r["camera_id"].startswith("cam-0") for r in records.values()), "the normal run gave its events"
    night = sorted((cfg.images_dir / "cam-night").glob("*.thumb.jpg"))
    assert len(night) == 4, "all four night frames, the black one too, were processed"
