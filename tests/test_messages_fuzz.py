"""Property: whatever bytes reach a schema's decode, it returns a usable message or raises one MessageError line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image_pipeline.message_checks import MAX_EPOCH
from image_pipeline.messages import (
    AlertMessage,
    DeadLetter,
    DeliveryMessage,
    EventMessage,
    ImageMessage,
    MessageError,
    UploadError,
    _Message,
)
from image_pipeline.storage import check_camera_id, check_id, safe_join

SCHEMAS: tuple[type[_Message], ...] = (
    ImageMessage, EventMessage, AlertMessage, DeliveryMessage, DeadLetter, UploadError
)
TIME_FIELDS = ("captured_at", "analyzed_at", "alerted_at", "failed_at", "received_at")
ID_FIELDS = ("image_id", "event_id", "first_image_id", "last_image_id", "key_image_id", "alert_id")

VALID: dict[type[_Message], dict[str, Any]] = {
    ImageMessage: ImageMessage(
        "cam-01-00000042", "cam-01", 42, "cam-01/cam-01-00000042.jpg", 640, 480, 1795484100.123
    ).to_dict(),
    EventMessage: EventMessage(
        "start", "cam-01-intrusion-000042", "intrusion", "cam-01", 0.91, "cam-01-00000042", "cam-01-00000043",
        "cam-01-00000043", 2, "image_event_database/cam-01-intrusion-000042.json", 1795484100.223, 1795484100.241,
    ).to_dict(),
    AlertMessage: AlertMessage(
        "A-5d41402a", "cam-01-intrusion-000042", "intrusion", "cam-01", 0.91,
        [{"name": "Security desk", "contact": "security-desk@example.com", "subscription": "Security desk"}],
        "image_event_alerts/cam-01-intrusion-000042.json", 1795484100.223, 1795484100.262,
    ).to_dict(),
    DeliveryMessage: DeliveryMessage(
        "A-5d41402a/security-desk.webhook-1a2b3c4d5e", "A-5d41402a", "cam-01-intrusion-000042", "intrusion",
        "cam-01", 0.91, "Someone entered the view of camera cam-01.", "Security desk",
        "security-desk.webhook-1a2b3c4d5e", "webhook", "webhook-1a2b3c4d5e", "https://hooks.example.com/desk",
        "image_event_database/cam-01-intrusion-000042_annotated.jpg",
        "image_event_alerts/cam-01-intrusion-000042.json", 1795484100.223, 1795484100.262, 7,
        ["cam-01-intrusion-000051"],
    ).to_dict(),
    DeadLetter: DeadLetter(
        "images", 1, 17, "Y2FtLTAx", "eyJzY2hlbWEiOiJpbWFnZSIsLi4ufQ==", "path escapes image_database/",
        "UnsafePathError", "image-analysis", 1795484101.5,
    ).to_dict(),
    UploadError: UploadError(415, "not a JPEG or PNG image", "notes.txt", "upload", 1234, 1795484102.0).to_dict(),
}

EXTREMES: list[Any] = [
    0, -1, 1, True, False, None, 2**31, 2**63, 10**19, 10**20 - 1, -(10**20) + 1, 10**12, MAX_EPOCH,
    1e308, -1e308, 5e-324, -0.0, 0.5, 1.0000001, float("nan"), float("inf"), float("-inf"),
    "", " ", "x" * 2000, "\ud800", "\x00", "cam-01\n", "../../etc/passwd", "/etc/passwd", "a" * 129, "c" * 65,
    "cam-01/cam-01-00000042.jpg/y.jpg", "intrusion", "start", "eA==", "=", [], {}, [{}], [[]], {"a": {}},
    [{"name": 1}], [{"": ""}], "1795484100", "NaN",
]

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.integers(min_value=-(10**30), max_value=10**30) | st.sampled_from(EXTREMES)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, which a hostile producer can send too."""
    return json.dumps(value).encode("utf-8")


def usable(message: _Message) -> None:
    """What consumers do with a decoded message must not raise either."""
    assert type(message).decode(message.encode()) == message
    for name in TIME_FIELDS:
        if hasattr(message, name):
            time.gmtime(getattr(message, name))
    for name in ID_FIELDS:
        if hasattr(message, name):
            check_id(getattr(message, name))
    if isinstance(message, ImageMessage | EventMessage | AlertMessage | DeliveryMessage):
        check_camera_id(message.camera_id)
    if isinstance(message, ImageMessage):
        safe_join(Path("/nonexistent-image-database"), message.path)
    if isinstance(message, DeadLetter):
        message.original_value()
    if isinstance(message, DeliveryMessage):  # the worker reads the key frame and names a status file
        safe_join(Path("/nonexistent-data"), message.key_frame_path)
        check_id(message.alertee)


def decode_or_refuse(schema: type[_Message], raw: bytes) -> None:
    """The property itself: a usable message, or a MessageError of one short line."""
    try:
        message = schema.decode(raw)
    except MessageError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000, str(exc)
        return
    usable(message)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    for schema in SCHEMAS:
        decode_or_refuse(schema, raw)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_random_json(value: Any) -> None:
    for schema in SCHEMAS:
        decode_or_refuse(schema, dumps(value))


@settings(max_examples=150, deadline=None)
@given(
    schema=st.sampled_from(SCHEMAS),
    body=st.dictionaries(st.sampled_from(sorted({k for v in VALID.values() for k in v})) | st.text(max_size=8),
                         json_values, max_size=8),
)
def test_random_objects_with_a_valid_header(schema: type[_Message], body: dict[str, Any]) -> None:
    decode_or_refuse(schema, dumps({**body, "schema": schema.SCHEMA, "version": 1}))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[type[_Message], bytes]:
    """A valid message with a few fields dropped, retyped, set to extremes, or added."""
    schema = draw(st.sampled_from(SCHEMAS))
    data = dict(VALID[schema])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data)) | st.text(max_size=10))
        action = draw(st.sampled_from(["drop", "extreme", "random"]))
        if action == "drop":
            data.pop(key, None)
        else:
            data[key] = draw(st.sampled_from(EXTREMES) if action == "extreme" else json_values)
    return schema, dumps(data)


@settings(max_examples=300, deadline=None)
@given(case=mutated())
def test_mutated_valid_messages(case: tuple[type[_Message], bytes]) -> None:
    decode_or_refuse(*case)


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[type[_Message], bytes]:
    """A valid message's bytes with some bytes replaced, inserted or cut."""
    schema = draw(st.sampled_from(SCHEMAS))
    raw = bytearray(dumps(VALID[schema]))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        chunk = draw(st.binary(min_size=1, max_size=6))
        action = draw(st.sampled_from(["replace", "insert", "cut"]))
        if action == "insert":
            raw[at:at] = chunk
        elif action == "replace":
            raw[at : at + len(chunk)] = chunk
        else:
            del raw[at : at + len(chunk)]
    return schema, bytes(raw)


@settings(max_examples=200, deadline=None)
@given(case=corrupted())
def test_corrupted_valid_messages(case: tuple[type[_Message], bytes]) -> None:
    decode_or_refuse(*case)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_seeds_of_the_mutations_are_valid(schema: type[_Message]) -> None:
    usable(schema.decode(dumps(VALID[schema])))
