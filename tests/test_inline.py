"""Inline transport: image messages carry the JPEG (schema version 2), so no stage needs the receiver's disk.

An inline run whose analyzer and alerter have a data folder of their own gives the events and alerts
of a files run of the same seed; so does one whose analyzer is killed and warms up from Kafka; an
image over the size limit is refused with a clear error and nothing else is affected.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
from kafka.errors import MessageSizeTooLargeError

from devtools.runner import PipelineProcesses
from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.kafka.reading import group_lag, read_recent, topic_size
from image_pipeline.messages import ImageMessage, MessageError
from image_pipeline.records.imagedb import ImageAnnouncer, parse_announcement, read_announced
from image_pipeline.records.inline import ImageTooLargeError, encode_inline, message_limit, split_value
from image_pipeline.vision.imaging import encode_jpeg
from tests.conftest import make_pipeline_config
from tests.pipeline_support import alert_ids, derived_image_bytes, event_records, run_reference

RECEIVER_ARGS = ("--cameras", "3", "--frames", "110", "--seed", "31", "--size", "320x240")
TOTAL = 3 * 110


def inline(cfg: Config, data_dir: Path | None = None) -> Config:
    """The same topics and groups in inline transport, optionally over another data folder (another host)."""
    out = cfg.replace(transport="inline")
    if data_dir is not None:
        for folder in (cfg.paths.images, cfg.paths.events, cfg.paths.alerts):
            (data_dir / folder).mkdir(parents=True, exist_ok=True)
        out = out.with_overrides(data_dir=str(data_dir))
    return out


# ---------------------------------------------------------------- the envelope, without Kafka


def sample_message(image_id: str = "cam-01-00000001") -> ImageMessage:
    return ImageMessage(image_id=image_id, camera_id="cam-01", seq=1, path=f"cam-01/{image_id}.jpg",
                        width=8, height=8, captured_at=1_700_000_000.0)


def test_version_2_carries_the_bytes_and_version_1_is_still_read() -> None:
    message, data = sample_message(), b"\xff\xd8 jpeg \n with newlines \n"
    fields, carried = split_value(encode_inline(message, data, 1000))
    assert carried == data and ImageMessage.from_dict(fields) == message
    fields, carried = split_value(message.encode())
    assert carried is None and ImageMessage.from_dict(fields) == message


def test_a_version_2_value_whose_length_disagrees_is_refused() -> None:
    value = encode_inline(sample_message(), b"12345", 1000)
    with pytest.raises(MessageError, match="data_bytes 5 does not match the 4 bytes"):
        split_value(value[:-1])


def test_encoding_an_image_over_the_limit_names_both_sizes() -> None:
    with pytest.raises(ImageTooLargeError, match=r"1,001 bytes, more than inline transport carries .* = 1,000"):
        encode_inline(sample_message(), b"x" * 1001, 1000)


# ---------------------------------------------------------------- on the broker


def noise_jpeg(width: int, height: int, seed: int) -> bytes:
    """A JPEG that compresses badly: its size grows with its area."""
    rng = np.random.default_rng(seed)
    return encode_jpeg(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), 95)


@pytest.mark.kafka
def test_an_image_over_the_limit_is_refused_and_nothing_else_is_affected(tmp_path: Path, kafka_bootstrap: str) -> None:
    small, large = noise_jpeg(320, 240, 1), noise_jpeg(1600, 1200, 2)
    limit = 3 * len(small)
    base = make_pipeline_config(tmp_path / "data", kafka_bootstrap)
    cfg = inline(base).replace(limits=dataclasses.replace(base.limits, max_image_bytes=limit))
    # The images topic was made for the default limit; this test's limit is far lower.
    producer = make_producer(cfg, "inline-limit-test")
    try:
        announcer = ImageAnnouncer(cfg, producer, fsync=False)
        announcer.store_and_announce("cam-01", 0, small, 320, 240, source="directory")[1].get(30)
        with pytest.raises(ImageTooLargeError) as refused:
            announcer.store_and_announce("cam-01", 1, large, 1600, 1200, source="directory")
        announcer.store_and_announce("cam-01", 2, small, 320, 240, source="directory")[1].get(30)
    finally:
        producer.close()
    assert f"{len(large):,} bytes, more than inline transport carries" in str(refused.value)
    assert f"limits.max_image_bytes = {limit:,}" in str(refused.value)
    stored = sorted(p.name for p in (cfg.images_dir / "cam-01").iterdir())
    assert stored == ["cam-01-00000000.jpg", "cam-01-00000002.jpg"], "the refused image was not stored either"
    values = [r.value for r in read_recent(cfg, cfg.topics.images.name)]
    announced = [parse_announcement(cfg, v) for v in values]
    assert [a.message.seq for a in announced] == [0, 2]
    assert all(read_announced(a) == small for a in announced)


@pytest.mark.kafka
def test_the_broker_refuses_what_is_larger_than_the_topic_was_made_for(tmp_path: Path, kafka_bootstrap: str) -> None:
    cfg = inline(make_pipeline_config(tmp_path / "data", kafka_bootstrap))
    limit = message_limit(cfg.limits.max_image_bytes)
    producer = make_producer(cfg, "inline-broker-limit", max_request_size=limit + 2_000_000)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            producer.send(cfg.topics.images.name, key=b"cam-01", value=b"x" * (limit + 1_000_000)).get(30)
    finally:
        producer.close()
    # Far above Kafka's default 1 MiB, within the limit: the topic was made for images this large.
    producer = make_producer(cfg, "inline-broker-fits")
    try:
        producer.send(cfg.topics.images.name, key=b"cam-01", value=b"y" * 3_000_000).get(30)
    finally:
        producer.close()
    assert topic_size(cfg, cfg.topics.images.name) == 1


@pytest.fixture(scope="module")
def files_reference(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Config:
    """An undisturbed files-mode run of RECEIVER_ARGS: every stage over one shared data folder."""
    root = tmp_path_factory.mktemp("files-reference")
    cfg = make_pipeline_config(root / "data", kafka_bootstrap)
    run_reference(cfg, root / "run", *RECEIVER_ARGS, "--fps", "0")
    assert event_records(cfg)
    return cfg


def assert_same_as(cfg: Config, reference: Config) -> None:
    assert event_records(cfg) == event_records(reference)
    assert derived_image_bytes(cfg) == derived_image_bytes(reference)
    assert alert_ids(cfg) == alert_ids(reference)


@pytest.mark.kafka
@pytest.mark.slow
def test_inline_analyzer_without_the_receivers_disk_gives_the_files_run_events(
    files_reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    receiving = inline(make_pipeline_config(tmp_path / "receiver-host", kafka_bootstrap))
    analyzing = inline(receiving, tmp_path / "analyzer-host")
    with PipelineProcesses(analyzing, tmp_path / "analyzer-run") as rest, \
            PipelineProcesses(receiving, tmp_path / "receiver-run") as recv:
        rest.start("alerter")
        rest.start("analyzer")
        receiver = recv.run("receiver", *RECEIVER_ARGS, "--fps", "0", timeout=300)
        assert receiver.process.returncode == 0, receiver.output()
        assert rest.wait_drained(timeout=240)
        assert all(code == 0 for code in rest.stop_all().values())
    assert not any(analyzing.images_dir.rglob("*.jpg")), "the analyzer's host never had an original"
    assert_same_as(analyzing, files_reference)
    first = read_recent(receiving, receiving.topics.images.name, limit=1)[0].value
    assert json.loads(first.partition(b"\n")[0])["version"] == 2


@pytest.mark.kafka
@pytest.mark.slow
def test_inline_analyzer_killed_mid_run_warms_up_from_kafka(
    files_reference: Config, tmp_path: Path, kafka_bootstrap: str
) -> None:
    receiving = inline(make_pipeline_config(tmp_path / "receiver-host", kafka_bootstrap))
    analyzing = inline(receiving, tmp_path / "analyzer-host")

    def committed() -> int:
        name = receiving.topics.images.name
        return topic_size(receiving, name) - group_lag(receiving, receiving.groups.analyzer, name)

    with PipelineProcesses(analyzing, tmp_path / "analyzer-run") as rest, \
            PipelineProcesses(receiving, tmp_path / "receiver-run") as recv:
        rest.start("alerter")
        analyzer = rest.start("analyzer")
        receiver = recv.start("receiver", *RECEIVER_ARGS, "--fps", "25")
        deadline = time.monotonic() + 120
        while committed() < TOTAL // 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        analyzer.process.kill()
        analyzer.process.wait()
        restarted = rest.start("analyzer", name="analyzer-restarted")
        assert receiver.process.wait(timeout=180) == 0, receiver.output()
        assert rest.wait_drained(timeout=240)
        codes = rest.stop_all()
    assert codes["analyzer-restarted"] == 0 and codes["alerter-0"] == 0, codes
    assert "warm-up from Kafka" in restarted.output()
    assert_same_as(analyzing, files_reference)
