"""The one error policy, in process: any content is either processed or refused, never a crash."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_pipeline.config import Config, load_config
from image_pipeline.errors import FatalError
from image_pipeline.kafka.policy import DEAD_LETTER_MAX_VALUE, RecordProcessor, dead_letter_for, is_environment_error
from image_pipeline.messages import DeadLetter, ImageMessage
from image_pipeline.records.imagedb import image_relpath
from image_pipeline.stages.alerting import AlertStep, event_decoder
from image_pipeline.stages.analysis import AnalysisStep, analysis_spec
from image_pipeline.stages.step import StageSpec
from image_pipeline.stages.thumbnails import ThumbnailStep, original_decoder
from image_pipeline.storage import remove_abandoned_temp_files
from image_pipeline.vision.imaging import encode_jpeg


class Record(NamedTuple):
    """The fields of a Kafka ConsumerRecord the runner uses."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("data")
    return load_config().with_overrides(data_dir=str(root))


def specs(cfg: Config) -> dict[str, StageSpec[Any]]:
    return {
        "analysis": analysis_spec(cfg, AnalysisStep(cfg)),
        "alerting": StageSpec("image-alert", "g", "events", event_decoder(cfg), AlertStep(cfg)),
        "thumbnails": StageSpec("image-thumbnails", "g", "images", original_decoder(cfg), ThumbnailStep()),
    }


def store(cfg: Config, camera_id: str, seq: int, data: bytes) -> bytes:
    """Put an image in the database and return its announcement."""
    image_id = f"{camera_id}-{seq:08d}"
    rel = image_relpath(camera_id, image_id)
    path = cfg.images_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ImageMessage(image_id, camera_id, seq, rel, 64, 48, 1000.0 + seq).encode()


def good_image(seed: int) -> bytes:
    return encode_jpeg(np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8), 90)


def process(spec: StageSpec[Any], value: bytes | None, offset: int = 0) -> Any:
    return RecordProcessor(spec).process(Record(spec.topic, 0, offset, b"cam", value))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_and_json_are_refused_or_processed_never_raised(cfg: Config, value: bytes) -> None:
    for spec in specs(cfg).values():
        result = process(spec, value)
        assert result.error is not None or result.outputs is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["image_id", "camera_id", "seq", "path", "width", "height", "captured_at"]),
       bad=st.one_of(st.none(), st.text(max_size=300), st.integers(), st.floats(), st.lists(st.integers())))
def test_mutated_image_announcements_never_escape_the_policy(cfg: Config, field: str, bad: Any) -> None:
    valid = json.loads(store(cfg, "cam-fuzz", 1, good_image(1)))
    for spec in (specs(cfg)["analysis"], specs(cfg)["thumbnails"]):
        result = process(spec, json.dumps({**valid, field: bad}).encode())
        assert result.error is not None or result.outputs is not None


def test_state_stays_usable_after_bad_records(cfg: Config) -> None:
    spec = specs(cfg)["analysis"]
    processor = RecordProcessor(spec)
    for offset, value in enumerate([b"\x00", b"[" * 200_000, b'{"seq": ' + b"9" * 5000 + b"}", None]):
        assert processor.process(Record("images", 0, offset, None, value)).error is not None
    for seq in range(5):
        result = processor.process(Record("images", 0, 10 + seq, b"cam-ok", store(cfg, "cam-ok", seq, good_image(seq))))
        assert result.error is None


def test_a_black_frame_after_noise_is_processed(cfg: Config) -> None:
    processor = RecordProcessor(specs(cfg)["analysis"])
    for seq in range(3):
        announcement = store(cfg, "cam-night", seq, good_image(seq))
        assert processor.process(Record("images", 0, seq, None, announcement)).error is None
    black = encode_jpeg(np.zeros((48, 64, 3), np.uint8), 90)
    assert processor.process(Record("images", 0, 3, None, store(cfg, "cam-night", 3, black))).error is None


def test_a_huge_bad_record_becomes_a_bounded_dead_letter() -> None:
    value = b"x" * 790_000
    letter = dead_letter_for(Record("images", 1, 42, b"k", value), ValueError("not JSON"), "image-analysis")
    assert letter.truncated and letter.value_length == len(value)
    assert letter.value_sha256 == hashlib.sha256(value).hexdigest()
    assert len(letter.original_value()) == DEAD_LETTER_MAX_VALUE
    assert len(letter.encode()) < 1_000_000, "fits the producer's default max_request_size"
    small = dead_letter_for(Record("images", 1, 43, None, b"abc"), ValueError("bad"), "x")
    assert not small.truncated and small.original_value() == b"abc" and small.value_sha256 is None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_environment_errors_are_told_apart_from_content(code: int) -> None:
    assert is_environment_error(OSError(code, "x"))


@pytest.mark.parametrize("code", [errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EISDIR])
def test_path_errors_caused_by_a_record_are_content(code: int) -> None:
    assert not is_environment_error(OSError(code, "x"))
    assert not is_environment_error(ValueError("x"))


def test_an_unreadable_image_database_stops_the_stage(cfg: Config, tmp_path: Path) -> None:
    def broken(_value: bytes | None) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    spec = StageSpec("t", "g", "images", broken, ThumbnailStep())
    with pytest.raises(FatalError, match="Permission denied"):
        process(spec, b"{}")


def test_dead_letters_round_trip(cfg: Config) -> None:
    letter = dead_letter_for(Record("images", 0, 5, None, b"\xff"), RecursionError("deep"), "c")
    again = DeadLetter.decode(letter.encode())
    assert again.original_value() == b"\xff" and again.error_type == "RecursionError"




def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    abandoned = tmp_path / f".x.json.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".y.json.{os.getpid()}.def456.tmp"
    for temp in (abandoned, live):
        temp.write_bytes(b"half")
    assert remove_abandoned_temp_files(tmp_path) == 1
    assert not abandoned.exists() and live.exists()
