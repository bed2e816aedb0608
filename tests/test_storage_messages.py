"""Safe paths, atomic writes, message schemas and image validation (no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from image_pipeline.config import LimitsConfig
from image_pipeline.messages import EventMessage, ImageMessage, MessageError
from image_pipeline.storage import UnsafePathError, atomic_write_json, check_id, leftover_temp_files, safe_join
from image_pipeline.vision.imaging import ImageError, decode, encode_jpeg, inspect

LIMITS = LimitsConfig()


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "cam/../../x.jpg", "a\x00b"])
def test_safe_join_refuses_escapes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, bad)


def test_safe_join_refuses_symlink_escape(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, "link/passwd")


def test_safe_join_accepts_inside_paths(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "cam-01/x.jpg") == tmp_path.resolve() / "cam-01" / "x.jpg"


@pytest.mark.parametrize("bad", ["", "..", "a/b", ".hidden", "x" * 200])
def test_check_id_refuses_unsafe_ids(bad: str) -> None:
    with pytest.raises(UnsafePathError):
        check_id(bad)


def test_atomic_write_leaves_no_temp_and_same_bytes(tmp_path: Path) -> None:
    target = tmp_path / "d" / "x.json"
    atomic_write_json(target, {"b": 1, "a": 2})
    first = target.read_bytes()
    atomic_write_json(target, {"a": 2, "b": 1})
    assert target.read_bytes() == first
    assert leftover_temp_files(tmp_path) == []


def image_message(**changes: object) -> dict[str, object]:
    msg = ImageMessage("cam-01-00000001", "cam-01", 1, "cam-01/cam-01-00000001.jpg", 640, 480, 1.5).to_dict()
    msg.update(changes)
    return msg


def test_image_message_round_trip() -> None:
    msg = ImageMessage("cam-01-00000001", "cam-01", 1, "cam-01/cam-01-00000001.jpg", 640, 480, 1.5)
    assert ImageMessage.decode(msg.encode()) == msg
    assert json.loads(msg.encode())["version"] == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "not an object"),
        (json.dumps(image_message(version=99)).encode(), "unsupported image version 99"),
        (json.dumps(image_message(schema="event")).encode(), "expected schema 'image'"),
        (json.dumps({k: v for k, v in image_message().items() if k != "path"}).encode(), "lacks field"),
        (json.dumps(image_message(seq="x")).encode(), "seq must be"),
    ],
)
def test_bad_image_messages_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        ImageMessage.decode(raw)


def test_event_message_rejects_unknown_phase() -> None:
    with pytest.raises(MessageError):
        EventMessage.from_dict({
            "schema": "event", "version": 1, "phase": "middle", "event_id": "e", "event_type": "tamper",
            "camera_id": "c", "score": 1.0, "first_image_id": "a", "last_image_id": "b", "key_image_id": "a",
            "frame_count": 1, "record_path": "r", "captured_at": 0.0,
        })


def test_decode_accepts_a_real_jpeg_and_png() -> None:
    image = np.full((48, 64, 3), 120, np.uint8)
    assert decode(encode_jpeg(image), LIMITS).shape == (48, 64, 3)
    ok, png = cv2.imencode(".png", image)
    assert ok and inspect(png.tobytes(), LIMITS).format == "png"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda jpg: b"", "empty"),
        (lambda jpg: jpg[: len(jpg) // 2], "corrupt"),
        (lambda jpg: b"GIF89a" + jpg, "unsupported"),
        (lambda jpg: b"root:x:0:0:root:/root:/bin/bash\n", "unsupported"),
    ],
)
def test_decode_refuses_bad_bytes(make: Callable[[bytes], bytes], kind: str) -> None:
    jpg = encode_jpeg(np.full((48, 64, 3), 90, np.uint8))
    with pytest.raises(ImageError) as info:
        decode(make(jpg), LIMITS)
    assert info.value.kind == kind


def test_decompression_bomb_is_refused_from_the_header() -> None:
    # A PNG header that declares 50000 x 50000 pixels: refused before any decode.
    _ok, png = cv2.imencode(".png", np.zeros((8, 8), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = (50000).to_bytes(4, "big") + (50000).to_bytes(4, "big")
    with pytest.raises(ImageError) as info:
        inspect(bytes(data), LIMITS)
    assert info.value.kind == "bomb"
