"""Fault injection on the real broker: kill -9, broker restarts, bad input, SIGTERM, disk errors.

Each test asserts the end state from the files on disk and from the topics.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.runner import PipelineProcesses
from image_pipeline.config import Config
from image_pipeline.kafka import broker
from image_pipeline.kafka.clients import make_producer
from image_pipeline.kafka.reading import group_lag, read_recent, topic_size
from image_pipeline.messages import DeadLetter
from image_pipeline.storage import leftover_temp_files
from tests.conftest import make_pipeline_config
from tests.pipeline_support import (
    alert_ids,
    alertable,
    derived_image_bytes,
    event_records,
    run_reference,
    topic_values,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RECEIVER_ARGS = ("--cameras", "3", "--frames", "110", "--seed", "31", "--size", "320x240")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Config:
    """One undisturbed run of RECEIVER_ARGS, to compare disturbed runs with."""
    root = tmp_path_factory.mktemp("reference")
    cfg = make_pipeline_config(root / "data", kafka_bootstrap)
    run_reference(cfg, root / "run", *RECEIVER_ARGS, "--fps", "0")
    assert event_records(cfg), "the reference run found events"
    return cfg


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll a condition until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def committed_images(cfg: Config) -> int:
    """How many image messages the analyzer group has committed."""
    return topic_size(cfg, cfg.topics.images.name) - group_lag(cfg, cfg.groups.analyzer, cfg.topics.images.name)


def assert_same_events(cfg: Config, reference: Config) -> None:
    """Same event ids, same records (times aside), same derived images, one alert per alertable event."""
    assert event_records(cfg) == event_records(reference)
    assert derived_image_bytes(cfg) == derived_image_bytes(reference)
    assert alert_ids(cfg) == alertable(cfg, event_records(cfg)) == alert_ids(reference)
    assert leftover_temp_files(cfg.images_dir, cfg.events_dir, cfg.alerts_dir) == []


def test_kill_9_analyzer_then_restart_gives_the_undisturbed_events(
    reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    total = 3 * 110
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        procs.start("alerter")
        analyzer = procs.start("analyzer")
        receiver = procs.start("receiver", *RECEIVER_ARGS, "--fps", "40")
        wait_until(lambda: committed_images(cfg) >= total // 3, 120, "a third of the images analyzed")
        analyzer.process.kill()
        analyzer.process.wait()
        killed_at = committed_images(cfg)
        began = time.monotonic()
        procs.start("analyzer", name="analyzer-restarted")
        assert receiver.process.wait(timeout=180) == 0
        assert procs.wait_drained(timeout=180)
        recovered_s = time.monotonic() - began
        codes = procs.stop_all()
    print(f"analyzer killed after {killed_at}/{total} committed images; drained {recovered_s:.1f} s after restart")
    assert codes["analyzer-restarted"] == 0 and codes["alerter-0"] == 0
    assert committed_images(cfg) == total
    assert_same_events(cfg, reference)


def test_kill_9_alerter_gives_exactly_one_alert_per_alertable_episode(
    reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        alerter = procs.start("alerter")
        procs.start("analyzer")
        receiver = procs.start("receiver", *RECEIVER_ARGS, "--fps", "40")
        wait_until(lambda: len(alert_ids(cfg)) >= 2, 120, "two alerts written")
        alerter.process.kill()
        alerter.process.wait()
        alerts_before = len(alert_ids(cfg))
        began = time.monotonic()
        procs.start("alerter", name="alerter-restarted")
        assert receiver.process.wait(timeout=180) == 0
        assert procs.wait_drained(timeout=180)
        recovered_s = time.monotonic() - began
        codes = procs.stop_all()
    print(f"alerter killed after {alerts_before} alerts; drained {recovered_s:.1f} s after restart; "
          f"{len(alert_ids(cfg))} alert files for {len(alertable(cfg, event_records(cfg)))} alertable events")
    assert codes["alerter-restarted"] == 0
    assert_same_events(cfg, reference)
    alert_messages = {v["event_id"] for v in topic_values(cfg, cfg.topics.alerts.name)}
    assert alert_messages == set(alert_ids(cfg)), "every alert file was announced at least once"


def test_two_analyzers_in_one_group_give_the_same_events(
    reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap, image_partitions=4)
    run_reference(cfg, tmp_path / "run", *RECEIVER_ARGS, "--fps", "0", analyzers=2)
    logs = [p.read_text() for p in (tmp_path / "run").glob("analyzer-*.log")]
    print(f"two analyzers: {len(event_records(cfg))} events, reference {len(event_records(reference))}")
    assert len(logs) == 2
    assert all("assigned partitions" in log for log in logs), "both instances took part in the group"
    assert_same_events(cfg, reference)


def test_broker_restart_while_the_receiver_produces_loses_nothing(tmp_path: Path) -> None:
    # A broker of this test's own, so stopping it disturbs no other test.
    inst = broker.instance_for(broker.free_port())
    broker.start(inst, fresh=True)
    try:
        cfg = make_pipeline_config(tmp_path / "data", inst.bootstrap)
        frames = 150
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            receiver = procs.start("receiver", "--cameras", "1", "--frames", str(frames), "--fps", "25",
                                   "--size", "320x240", "--seed", "3")
            time.sleep(2.0)
            broker.stop(inst)
            outage_began = time.monotonic()
            time.sleep(6.0)
            broker.start(inst)
            outage_s = time.monotonic() - outage_began
            assert receiver.process.wait(timeout=180) == 0, receiver.output()
            output = receiver.output()
        announced = [json.loads(r.value)["image_id"] for r in read_recent(cfg, cfg.topics.images.name)]
        print(f"broker down for {outage_s:.1f} s; {len(announced)} announcements for {frames} images")
        assert sorted(set(announced)) == sorted(announced), "no duplicates"
        assert len(announced) == frames
        assert "not acknowledging" in output and "acknowledges again" in output
    finally:
        broker.stop_and_purge(inst)


def test_a_send_that_fails_for_good_keeps_the_image_and_exits_non_zero(tmp_path: Path) -> None:
    inst = broker.instance_for(broker.free_port())
    broker.start(inst, fresh=True)
    try:
        cfg = make_pipeline_config(tmp_path / "data", inst.bootstrap)
        cfg = cfg.replace(kafka=dataclasses.replace(cfg.kafka, delivery_timeout_ms=4000, request_timeout_ms=2000))
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            receiver = procs.start("receiver", "--cameras", "1", "--frames", "60", "--fps", "15",
                                   "--size", "320x240", "--seed", "4")
            wait_until(lambda: topic_size(cfg, cfg.topics.images.name) >= 5, 60, "the first announcements")
            broker.stop(inst)  # and it never comes back
            code = receiver.process.wait(timeout=120)
            output = receiver.output()
    finally:
        broker.stop_and_purge(inst)
    assert code == 1, output
    assert "never reached Kafka" in output and "did not reach Kafka" in output
    assert "all 60 images acknowledged" not in output
    stored = sorted((cfg.images_dir / "cam-01").glob("*.jpg"))
    assert len(stored) == 60, "every image stays in the image database"


def write_image_file(cfg: Config, rel: str, data: bytes) -> None:
    path = cfg.images_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def bad_messages(cfg: Config) -> dict[str, bytes]:
    """One image message of each bad kind, with the files some of them point at."""
    import cv2
    import numpy as np

    from image_pipeline.messages import ImageMessage
    from image_pipeline.vision.imaging import encode_jpeg

    jpeg = encode_jpeg(np.full((240, 320, 3), 100, np.uint8))
    write_image_file(cfg, "bad/bad-00000001.jpg", jpeg[: len(jpeg) // 2])
    write_image_file(cfg, "bad/bad-00000002.jpg", b"")
    write_image_file(cfg, "bad/bad-00000003.jpg", b"this is a text file, not an image\n" * 20)
    _ok, png = cv2.imencode(".png", np.zeros((8, 8), np.uint8))
    bomb = bytearray(png.tobytes())
    bomb[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    write_image_file(cfg, "bad/bad-00000004.png", bytes(bomb))

    def msg(seq: int, path: str) -> bytes:
        return ImageMessage(f"bad-{seq:08d}", "bad", seq, path, 320, 240, time.time()).encode()

    good = json.loads(msg(9, "bad/x.jpg"))
    return {
        "not JSON": b"\x00\x01 definitely not json",
        "unknown version": json.dumps({**good, "version": 7}).encode(),
        "missing fields": json.dumps({k: v for k, v in good.items() if k not in ("path", "seq")}).encode(),
        "path outside": msg(5, "../../etc/passwd"),
        "missing file": msg(6, "bad/bad-00000099.jpg"),
        "truncated JPEG": msg(1, "bad/bad-00000001.jpg"),
        "zero-byte file": msg(2, "bad/bad-00000002.jpg"),
        "non-image file": msg(3, "bad/bad-00000003.jpg"),
        "decompression bomb": msg(4, "bad/bad-00000004.png"),
    }


def test_bad_messages_go_to_the_dead_letter_topic_and_good_ones_are_processed(
    reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    bad = bad_messages(cfg)
    producer = make_producer(cfg, "test-bad-input")
    for value in bad.values():
        producer.send(cfg.topics.images.name, key=b"bad", value=value)
    producer.send(cfg.topics.events.name, key=b"bad", value=b"{not an event")
    producer.flush()
    producer.close()
    run_reference(cfg, tmp_path / "run", *RECEIVER_ARGS, "--fps", "0")

    letters = [DeadLetter.decode(r.value) for r in read_recent(cfg, cfg.topics.dead_letter.name)]
    images_topic = cfg.topics.images.name
    from_images = {x.original_value(): x for x in letters if x.source_topic == images_topic}
    for kind, value in bad.items():
        assert value in from_images, f"{kind} was not dead-lettered"
        assert from_images[value].error, kind
    assert len(from_images) == len(bad)
    print(f"bad input: {len(from_images)} of {len(bad)} bad image messages dead-lettered, "
          f"{len(letters)} dead letters in all; analyzer lag 0")
    assert "escapes" in from_images[bad["path outside"]].error
    assert "bomb" in from_images[bad["decompression bomb"]].error
    assert any(letter.source_topic == cfg.topics.events.name for letter in letters)
    # The dlq tool shows them, one line each with the reason, and the original bytes.
    shown = subprocess.run([sys.executable, "-m", "image_pipeline.kafka.dlq", "show", "--config",
                            str(tmp_path / "run" / "config.yaml")], capture_output=True, text=True, timeout=60,
                           check=True).stdout
    assert shown.startswith(f"{len(letters)} dead letter(s) in topic {cfg.topics.dead_letter.name}")
    assert "UnsafePathError: path escapes image_database/: '../../etc/passwd'" in shown
    errors = [line.split()[4].rstrip(":") for line in shown.splitlines()[1:] if not line.startswith("    ")]
    assert sorted(errors) == sorted(
        ["MessageError"] * 4 + ["UnsafePathError", "BadInputError"] + ["ImageError"] * 4
    ), shown
    # All good images analyzed, with exactly the undisturbed events.
    assert group_lag(cfg, cfg.groups.analyzer, cfg.topics.images.name) == 0
    assert_same_events(cfg, reference)


@pytest.mark.parametrize("role", ["receiver", "analyzer", "alerter", "thumbnails"])
def test_sigterm_mid_run_exits_0_commits_and_leaves_no_temp_files(
    role: str, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        alerter = procs.start("alerter")
        analyzer = procs.start("analyzer")
        thumbnails = procs.start("thumbnails")
        receiver = procs.start("receiver", "--cameras", "2", "--frames", "120", "--fps", "30",
                               "--size", "320x240", "--seed", "8")
        target = {"receiver": receiver, "analyzer": analyzer, "alerter": alerter, "thumbnails": thumbnails}[role]
        wait_until(lambda: committed_images(cfg) >= 40, 120, "40 images analyzed")
        if role == "alerter":
            wait_until(lambda: len(alert_ids(cfg)) >= 1, 120, "an alert")
        signalled = time.monotonic()
        assert procs.stop(target, signal.SIGTERM, timeout=60) == 0, target.output()
        print(f"SIGTERM {role}: exit 0 after {time.monotonic() - signalled:.1f} s")
        if role == "receiver":
            stored = len((cfg.images_dir / "ground_truth.jsonl").read_text().splitlines())
            assert topic_size(cfg, cfg.topics.images.name) == stored, "every stored image was announced"
        else:
            topic = cfg.topics.events.name if role == "alerter" else cfg.topics.images.name
            group = {"analyzer": cfg.groups.analyzer, "alerter": cfg.groups.alerter,
                     "thumbnails": cfg.groups.thumbnails}[role]
            assert topic_size(cfg, topic) - group_lag(cfg, group, topic) > 0, "offsets were committed"
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    assert "finishing the current message" in target.output()
    assert leftover_temp_files(cfg.images_dir, cfg.events_dir, cfg.alerts_dir) == []


def test_disk_full_stops_the_analyzer_before_commit_and_a_restart_redoes_the_work(
    reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    cfg = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    run_reference_receiver = PipelineProcesses(cfg, tmp_path / "run")
    with run_reference_receiver as procs:
        assert procs.run("receiver", *RECEIVER_ARGS, "--fps", "0").process.returncode == 0

        def tiny_disk() -> None:
            # Files larger than 2 KB cannot be written: like a full disk, writes fail with EFBIG.
            resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

        full = subprocess.run(procs.command("analyzer", "--until-idle", "10"), env=procs.env,
                              preexec_fn=tiny_disk, capture_output=True, text=True, timeout=180, check=False)
        assert full.returncode == 1, full.stdout + full.stderr
        assert "cannot write outputs" in full.stderr
        assert committed_images(cfg) < 3 * 110, "the failed record was not committed"
        print(f"disk full: analyzer exited 1 with {committed_images(cfg)} of {3 * 110} images committed")
        procs.start("alerter")
        procs.start("analyzer", name="analyzer-after-fix")
        assert procs.wait_drained(timeout=180)
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    assert_same_events(cfg, reference)
