"""The thumbnails consumer: pure derivation, then its own group on the real images topic (fan-out)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_consumer, make_producer
from image_pipeline.kafka.runner import RunOptions
from image_pipeline.messages import DeadLetter, ImageMessage
from image_pipeline.records.imagedb import ImageAnnouncer, camera_history
from image_pipeline.stages.thumbnails import THUMB_WIDTH, derive, derived_paths, run
from tests.web_support import image_bytes, read_topic


def test_derive_makes_gray_full_size_and_a_160px_thumbnail() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :, 2] = 200  # red
    derived = derive(image)
    gray = cv2.imdecode(np.frombuffer(derived.gray, np.uint8), cv2.IMREAD_UNCHANGED)
    thumb = cv2.imdecode(np.frombuffer(derived.thumb, np.uint8), cv2.IMREAD_UNCHANGED)
    assert gray is not None and thumb is not None
    assert gray.shape == (480, 640)
    assert thumb.shape == (120, THUMB_WIDTH, 3)


def test_small_images_are_not_enlarged() -> None:
    thumb = derive(np.zeros((30, 40, 3), np.uint8)).thumb
    decoded = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    assert decoded.shape[:2] == (30, 40)


def test_derived_files_sit_next_to_the_original_and_are_not_history(tmp_path: Path) -> None:
    root = tmp_path
    original = root / "cam-01" / "cam-01-00000005.png"
    gray, thumb = derived_paths(original)
    assert (gray.name, thumb.name) == ("cam-01-00000005.gray.jpg", "cam-01-00000005.thumb.jpg")
    for path in (original, gray, thumb):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert [s.image_id for s in camera_history(root, "cam-01", 10, 10)] == ["cam-01-00000005"]


@pytest.mark.kafka
def test_consumer_derives_every_image_and_dead_letters_bad_ones(pipeline_config: Config) -> None:
    cfg = pipeline_config
    producer = make_producer(cfg, "test-thumbs")
    announcer = ImageAnnouncer(cfg, producer, fsync=False)
    good = []
    for seq in range(3):
        message, future = announcer.store_and_announce(
            "cam-01", seq, image_bytes("jpg", 320, 240, seed=seq), 320, 240, source="synthetic"
        )
        future.get(timeout=10)
        good.append(message)
    # Bad input: not JSON, a path escaping the image database, a missing file, a corrupt file.
    topic = cfg.topics.images.name
    producer.send(topic, key=b"cam-09", value=b"not json")
    escaping = ImageMessage("cam-09-00000000", "cam-09", 0, "../../../etc/passwd", 10, 10, 0.0)
    producer.send(topic, key=b"cam-09", value=escaping.encode())
    missing = ImageMessage("cam-09-00000001", "cam-09", 1, "cam-09/cam-09-00000001.jpg", 10, 10, 0.0)
    producer.send(topic, key=b"cam-09", value=missing.encode())
    announcer.store("cam-09", "cam-09-00000002", b"\xff\xd8\xff\xe0 broken", captured_at=1.0)
    corrupt = ImageMessage("cam-09-00000002", "cam-09", 2, "cam-09/cam-09-00000002.jpg", 10, 10, 0.0)
    producer.send(topic, key=b"cam-09", value=corrupt.encode())
    producer.flush()
    producer.close()

    stats = run(cfg, threading.Event(), RunOptions(until_idle=3, progress_every_s=1))

    assert stats.processed == 7
    assert stats.dead_lettered == 4
    for message in good:
        gray, thumb = derived_paths(cfg.images_dir / message.path)
        gray_image = cv2.imread(str(gray), cv2.IMREAD_UNCHANGED)
        thumb_image = cv2.imread(str(thumb))
        assert gray_image is not None, gray
        assert thumb_image is not None, thumb
        assert gray_image.shape == (240, 320)
        assert thumb_image.shape == (120, THUMB_WIDTH, 3)
    letters = [DeadLetter.from_dict(v) for v in read_topic(cfg, cfg.topics.dead_letter.name, 4)]
    assert len(letters) == 4
    assert {letter.client for letter in letters} == {"image-thumbnails"}
    reasons = " | ".join(letter.error for letter in letters)
    assert "not JSON" in reasons and "escapes" in reasons and "missing" in reasons
    assert not (cfg.data_dir.parent / "etc").exists()


@pytest.mark.kafka
def test_fan_out_both_groups_read_every_image(pipeline_config: Config) -> None:
    cfg = pipeline_config
    producer = make_producer(cfg, "test-fanout")
    announcer = ImageAnnouncer(cfg, producer, fsync=False)
    for seq in range(4):
        announcer.store_and_announce("cam-03", seq, image_bytes(seed=seq), 64, 48, source="synthetic")[1].get(10)
    producer.close()

    run(cfg, threading.Event(), RunOptions(until_idle=2, progress_every_s=60))
    # A second group on the same topic still gets all four: groups do not share offsets.
    other = make_consumer(cfg, f"analysis-like-{uuid.uuid4().hex[:6]}", "test-other-group")
    other.subscribe([cfg.topics.images.name])
    seen: list[str] = []
    for _ in range(30):
        for records in other.poll(timeout_ms=500).values():
            seen.extend(ImageMessage.decode(r.value).image_id for r in records)
        if len(seen) >= 4:
            break
    other.close()
    assert sorted(seen) == [f"cam-03-{i:08d}" for i in range(4)]
    # And the thumbnails group committed past all of them, so a restart does no work.
    restarted = run(cfg, threading.Event(), RunOptions(until_idle=2, progress_every_s=60))
    assert restarted.processed == 0
