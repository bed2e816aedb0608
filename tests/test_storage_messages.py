"""Safe paths, atomic writes, message schemas and image validation (no Kafka)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from image_pipeline.config import LimitsConfig
from image_pipeline.message_checks import MAX_EPOCH
from image_pipeline.messages import (
    MAX_MESSAGE_BYTES,
    AlertMessage,
    DeadLetter,
    EventMessage,
    ImageMessage,
    MessageError,
    UploadError,
    _Message,
)
from image_pipeline.storage import (
    MAX_CAMERA_ID_LEN,
    UnsafePathError,
    atomic_write_json,
    check_camera_id,
    check_id,
    image_relpath,
    leftover_temp_files,
    safe_join,
)
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


# ---------------------------------------------------------------- ids: one rule, bounded, no newline


@pytest.mark.parametrize("bad", ["cam-01\n", "x\n", "a" * 127 + "\n"])
def test_check_id_refuses_a_trailing_newline(bad: str) -> None:
    with pytest.raises(UnsafePathError):
        check_id(bad)


def test_camera_ids_are_bounded_so_every_derived_name_fits() -> None:
    assert check_camera_id("c" * MAX_CAMERA_ID_LEN) == "c" * MAX_CAMERA_ID_LEN
    with pytest.raises(UnsafePathError, match="camera_id"):
        check_camera_id("c" * (MAX_CAMERA_ID_LEN + 1))
    longest_event = f"{'c' * MAX_CAMERA_ID_LEN}-lighting_change-{10**12 - 1:06d}"
    assert check_id(longest_event) and len(f"{longest_event}_annotated.jpg") < 255


def test_image_relpath_is_the_one_path_rule() -> None:
    assert image_relpath("cam-01", "cam-01-00000001", "png") == "cam-01/cam-01-00000001.png"
    for bad in [("cam-01", "x", "gif"), ("cam-01\n", "x", "jpg"), ("cam-01", "../x", "jpg")]:
        with pytest.raises(UnsafePathError):
            image_relpath(*bad)


# ---------------------------------------------------------------- messages: every bad input is one MessageError


def event_message(**changes: object) -> dict[str, object]:
    msg = EventMessage(
        "start", "cam-01-intrusion-000042", "intrusion", "cam-01", 0.91, "cam-01-00000042", "cam-01-00000043",
        "cam-01-00000043", 2, "image_event_database/cam-01-intrusion-000042.json", 1795484100.223, 1795484100.241,
    ).to_dict()
    msg.update(changes)
    return msg


def alert_message(**changes: object) -> dict[str, object]:
    alertees = [{"name": "Desk", "contact": "desk@example.com", "subscription": "Desk"}]
    msg = AlertMessage(
        "A-5d41402a", "cam-01-intrusion-000042", "intrusion", "cam-01", 0.91, alertees,
        "image_event_alerts/cam-01-intrusion-000042.json", 1795484100.223, 1795484100.262,
    ).to_dict()
    msg.update(changes)
    return msg


def refused(schema: type[_Message], raw: bytes) -> str:
    """The one-line reason a schema gives for refusing raw bytes."""
    with pytest.raises(MessageError) as info:
        schema.decode(raw)
    reason = str(info.value)
    assert "\n" not in reason and len(reason) < 400, reason
    return reason


def dumps(data: dict[str, object]) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nests more than"),
        (b'{"seq": ' + b"9" * 5000 + b"}", "integer of 5000 digits"),
        (b'{"captured_at": NaN}', "non-finite"),
        (b'{"captured_at": Infinity}', "non-finite"),
        (b'{"captured_at": -Infinity}', "non-finite"),
        (b'{"captured_at": 1e400}', "non-finite"),
        (b'{"pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}', "more than the limit"),
    ],
)
def test_unparseable_json_is_one_message_error(raw: bytes, reason: str) -> None:
    assert reason in refused(ImageMessage, raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("captured_at", "soon"), ("captured_at", 1e300), ("captured_at", -1.0), ("captured_at", 4102444800),
        ("captured_at", True), ("analyzed_at", None), ("score", 1.5), ("score", -0.01), ("score", True),
        ("frame_count", 0), ("frame_count", 2.0), ("event_type", "fire"),
        ("event_type", "INTRUSION"), ("event_id", "../../etc/passwd"), ("event_id", "e\n"),
        ("camera_id", "c" * 65), ("camera_id", ""), ("first_image_id", 7), ("key_image_id", "x" * 129),
        ("record_path", "/etc/passwd"), ("record_path", "../x.json"), ("record_path", "a\\..\\b"),
    ],
)
def test_bad_event_fields_are_refused_naming_the_field(field: str, value: object) -> None:
    assert f"bad event message: {field} " in refused(EventMessage, dumps(event_message(**{field: value})))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 10**12), ("seq", True), ("height", 100_001), ("width", True), ("image_id", "cam-01-00000001\n"),
        ("camera_id", "cam 01"), ("camera_id", "c" * 65), ("source", "webcam"), ("source", ""),
        ("captured_at", 1e300), ("captured_at", -5), ("image_id", "\ud800"),
    ],
)
def test_bad_image_fields_are_refused_naming_the_field(field: str, value: object) -> None:
    assert f"bad image message: {field} " in refused(ImageMessage, dumps(image_message(**{field: value})))


@pytest.mark.parametrize(
    "path",
    [
        "cam-01/cam-01-00000001.jpg/y.jpg",  # runs through a file
        "cam-01/" + "x" * 300 + ".jpg",
        "cam-02/cam-01-00000001.jpg",  # another camera's folder
        "cam-01/cam-01-00000001.gif",
        "cam-01/./cam-01-00000001.jpg",
        "../../etc/passwd",
    ],
)
def test_image_path_must_be_the_image_database_path(path: str) -> None:
    assert "bad image message: path " in refused(ImageMessage, dumps(image_message(path=path)))


def test_an_image_path_is_shaped_not_looked_up() -> None:
    # Whether the named file exists, and is this image, is decided when it is read (a missing file).
    assert ImageMessage.decode(dumps(image_message(path="cam-01/cam-01-00000002.jpg"))).path


def test_image_path_may_be_png_and_escapes_are_named() -> None:
    assert ImageMessage.decode(dumps(image_message(path="cam-01/cam-01-00000001.png"))).path.endswith(".png")
    assert "escapes" in refused(ImageMessage, dumps(image_message(path="../../etc/passwd")))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alertees", {"name": "x"}), ("alertees", ["x"]), ("alertees", [{"name": 1}]), ("alertees", [{"": "x"}]),
        ("alertees", [{"name": ["x"]}]), ("event_type", "fire"), ("alert_id", "A-1\n"), ("alerted_at", 1e300),
        ("record_path", "../alerts/x.json"),
    ],
)
def test_bad_alert_fields_are_refused_naming_the_field(field: str, value: object) -> None:
    assert f"bad alert message: {field} " in refused(AlertMessage, dumps(alert_message(**{field: value})))


def test_bad_dead_letter_and_upload_error_fields_are_refused() -> None:
    letter = DeadLetter("images", 0, 5, None, "eA==", "bad", "MessageError", "test", 1795484101.5).to_dict()
    for field, value in [("value_b64", "not base64!"), ("key_b64", 5), ("partition", -1), ("offset", "5"),
                         ("source_topic", "a b"), ("failed_at", float("1e20"))]:
        assert f"bad dead-letter message: {field} " in refused(DeadLetter, dumps({**letter, field: value}))
    upload = UploadError(415, "not an image", "notes.txt", "", 12, 1795484102.0).to_dict()
    for field, value in [("status", 99), ("size", -1), ("error", ""), ("filename", None),
                         ("received_at", "now")]:
        assert f"bad upload-error message: {field} " in refused(UploadError, dumps({**upload, field: value}))


def test_version_must_be_the_integer_1() -> None:
    assert "version True" in refused(ImageMessage, dumps(image_message(version=True)))
    assert "version 1.0" in refused(ImageMessage, dumps(image_message(version=1.0)))


def test_huge_bad_values_give_a_short_reason() -> None:
    reason = refused(ImageMessage, dumps(image_message(schema="x" * 500_000)))
    assert reason.startswith("expected schema 'image'")


def test_documented_examples_and_pipeline_messages_still_decode() -> None:
    letter = DeadLetter("images", 1, 17, "Y2FtLTAx", "eyJzY2hlbWEiOiJpbWFnZSIsLi4ufQ==", "path escapes",
                        "UnsafePathError", "image-analysis", 1795484101.5)
    upload = UploadError(415, "not a JPEG or PNG image", "notes.txt", "upload", 1234, 1795484102.0)
    refused_upload = UploadError(400, "invalid camera_id: 'a b'", "", "a b" * 60, 0)
    for message in [ImageMessage.decode(dumps(image_message())), EventMessage.decode(dumps(event_message())),
                    AlertMessage.decode(dumps(alert_message())), letter, upload, refused_upload]:
        assert type(message).decode(message.encode()) == message
    # Pipeline defaults: an event without analyzed_at, whole-number times and scores.
    minimal = {k: v for k, v in event_message(score=1, captured_at=0).items() if k != "analyzed_at"}
    assert EventMessage.decode(dumps(minimal)).score == 1


def test_every_field_of_every_schema_has_a_check() -> None:
    for schema in (ImageMessage, EventMessage, AlertMessage, DeadLetter, UploadError):
        assert set(schema.FIELDS) == {f.name for f in dataclasses.fields(schema)}, schema.SCHEMA


def test_decoded_times_are_safe_for_time_gmtime() -> None:
    event = EventMessage.decode(dumps(event_message(captured_at=MAX_EPOCH - 0.001)))
    assert time.gmtime(event.captured_at).tm_year == 2099
    assert "captured_at" in refused(EventMessage, dumps(event_message(captured_at=MAX_EPOCH)))
