"""Message schemas, one per topic. Every value is JSON carrying a schema name and version.

docs/messages.md documents each with an example. decode() checks every field's type and range, so a
consumer gets one MessageError line naming the field, never a TypeError deep inside a stage. Building a
message does not check: producers build theirs from checked values, and tests build hostile ones on
purpose to exercise the consumers' own defences (safe_join and the like).
"""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from image_pipeline import storage
from image_pipeline.errors import BadInputError
from image_pipeline.message_checks import (
    _CAMERA,
    _EVENT_TYPE,
    _FREE_TEXT,
    _ID,
    _NAME,
    _SCORE,
    _SEQ,
    _SIDE,
    _TEXT,
    _TIME,
    MAX_DEPTH,
    MAX_ERROR_TEXT,
    MAX_INT_DIGITS,
    MAX_MESSAGE_BYTES,
    MAX_SEQ,
    MAX_TEXT,
    Check,
    _alertees,
    _base64,
    _escapes,
    _flag,
    _id_list,
    _integer,
    _key_base64,
    _number,
    _one_of,
    _optional,
    _optional_sha256,
    _relative_path,
    _text,
    _topic,
)
from image_pipeline.storage import brief_repr

SCHEMA_VERSION = 1

# Ours are under 4 KB; Kafka's default record limit is about 1 MB, so a dead letter fits too.
class MessageError(BadInputError):
    """A message value that is not JSON, has an unknown schema or version, or a missing or bad field."""


T = TypeVar("T", bound="_Message")


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise MessageError(f"message has an integer of {len(digits)} digits (at most {MAX_INT_DIGITS})")
    return int(digits)


def _parse_float(digits: str) -> float:
    """Also parses NaN and Infinity, which Python's json accepts and JSON does not; 1e400 is inf too."""
    value = float(digits)
    if not math.isfinite(value):
        raise MessageError(f"message has a non-finite number: {brief_repr(digits)}")
    return value


def _depth(data: Any) -> int:
    """How deep lists and objects nest, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def parse_json(raw: bytes | None, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Decode a JSON object from bytes, or raise MessageError; NaN, Infinity and huge values are refused."""
    if raw is None:
        raise MessageError("message has no value")
    if len(raw) > max_bytes:
        raise MessageError(f"message is {len(raw)} bytes, more than the limit of {max_bytes}")
    try:
        data = json.loads(
            raw.decode("utf-8"),
            parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_float,
        )
    except RecursionError:
        raise MessageError("message is not JSON we accept: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise MessageError(f"message is not JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise MessageError(f"message is JSON but not an object: {type(data).__name__}")
    if _depth(data) > MAX_DEPTH:
        raise MessageError(f"message nests more than {MAX_DEPTH} levels deep")
    return data


@dataclass(frozen=True)
class _Message:
    """Base of all messages: encode to and decode from JSON bytes with a schema check."""

    SCHEMA = ""
    FIELDS: ClassVar[dict[str, Check]] = {}  # every field's check, run by from_dict

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-ready dict, with schema and version first."""
        body = asdict(self)
        return {"schema": self.SCHEMA, "version": SCHEMA_VERSION, **body}

    def encode(self) -> bytes:
        """The message as compact UTF-8 JSON bytes."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def decode(cls: type[T], raw: bytes | None) -> T:
        """Parse and validate bytes from Kafka; raises MessageError with a clear reason."""
        return cls.from_dict(parse_json(raw))

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Validate a decoded dict against this schema: schema, version, then every field."""
        if not isinstance(data, dict):
            raise MessageError(f"expected a {cls.SCHEMA} object, got {type(data).__name__}")
        if data.get("schema") != cls.SCHEMA:
            raise MessageError(f"expected schema {cls.SCHEMA!r}, got {brief_repr(data.get('schema'))}")
        version = data.get("version")
        if type(version) is not int or version != SCHEMA_VERSION:  # True and 1.0 equal 1
            raise MessageError(
                f"unsupported {cls.SCHEMA} version {brief_repr(version)} (supported: {SCHEMA_VERSION})"
            )
        kwargs: dict[str, Any] = {}
        missing = []
        for f in fields(cls):
            if f.name in data:
                kwargs[f.name] = data[f.name]
            elif f.default is MISSING and f.default_factory is MISSING:
                missing.append(f.name)
        if missing:
            raise MessageError(f"{cls.SCHEMA} message lacks field(s): {', '.join(missing)}")
        for name, value in kwargs.items():
            try:
                cls.FIELDS[name](value)
            except ValueError as exc:
                raise MessageError(f"bad {cls.SCHEMA} message: {name} {exc}") from None
        message = cls(**kwargs)
        try:
            message._check_together()
        except ValueError as exc:
            raise MessageError(f"bad {cls.SCHEMA} message: {exc}") from None
        return message

    def _check_together(self) -> None:
        """Rules that span fields; raises ValueError."""


@dataclass(frozen=True)
class ImageMessage(_Message):
    """Announces one stored image on the images topic; keyed by camera_id."""

    SCHEMA = "image"
    SOURCES: ClassVar[tuple[str, ...]] = ("synthetic", "directory", "upload", "camera")
    image_id: str
    camera_id: str
    seq: int
    path: str  # relative to the image database
    width: int
    height: int
    captured_at: float  # epoch seconds, taken by the receiver
    source: str = "synthetic"  # synthetic | directory | upload | camera (a configured camera)

    FIELDS: ClassVar[dict[str, Check]] = {
        "image_id": _ID, "camera_id": _CAMERA, "seq": _SEQ, "path": _TEXT, "width": _SIDE,
        "height": _SIDE, "captured_at": _TIME, "source": _one_of(SOURCES),
    }

    def _check_together(self) -> None:
        """The path must name one image file in the camera's own folder: `<camera_id>/<id>.jpg|png`.

        That shape rules out paths through a file and over-long names. Whether that file is there
        (and holds this image) is the reader's question: a missing file is refused when it is read.
        """
        if _escapes(self.path):
            raise ValueError(f"path escapes the image database: {brief_repr(self.path)}")
        folder, _, name = self.path.partition("/")
        stem, _, ext = name.rpartition(".")
        try:
            shaped = folder == self.camera_id and ext in storage.IMAGE_EXTS and bool(storage.check_id(stem))
        except storage.UnsafePathError:
            shaped = False
        if not shaped:
            raise ValueError(f"path must be '{self.camera_id}/<image id>.jpg' (or .png), got {brief_repr(self.path)}")


@dataclass(frozen=True)
class EventMessage(_Message):
    """An event's lifecycle step (start, update, end) on the events topic; keyed by camera_id."""

    SCHEMA = "event"
    PHASES: ClassVar[tuple[str, ...]] = ("start", "update", "end")
    phase: str  # start | update | end
    event_id: str
    event_type: str
    camera_id: str
    score: float
    first_image_id: str
    last_image_id: str
    key_image_id: str
    frame_count: int
    record_path: str  # relative to the event database
    captured_at: float  # capture time of last_image_id, for end-to-end latency
    analyzed_at: float = field(default_factory=time.time)

    FIELDS: ClassVar[dict[str, Check]] = {
        "phase": _one_of(PHASES), "event_id": _ID, "event_type": _EVENT_TYPE, "camera_id": _CAMERA,
        "score": _SCORE, "first_image_id": _ID, "last_image_id": _ID, "key_image_id": _ID,
        "frame_count": _integer(1, MAX_SEQ), "record_path": _relative_path, "captured_at": _TIME,
        "analyzed_at": _TIME,
    }


@dataclass(frozen=True)
class AlertMessage(_Message):
    """One alert record was written; on the alerts topic, keyed by camera_id."""

    SCHEMA = "alert"
    alert_id: str
    event_id: str
    event_type: str
    camera_id: str
    score: float
    alertees: list[dict[str, str]]
    record_path: str  # relative to the alert folder
    captured_at: float
    alerted_at: float = field(default_factory=time.time)

    FIELDS: ClassVar[dict[str, Check]] = {
        "alert_id": _ID, "event_id": _ID, "event_type": _EVENT_TYPE, "camera_id": _CAMERA,
        "score": _SCORE, "alertees": _alertees, "record_path": _relative_path, "captured_at": _TIME,
        "alerted_at": _TIME,
    }


@dataclass(frozen=True)
class DeliveryMessage(_Message):
    """One alert to deliver to one alertee on one channel; on the deliveries topic, keyed by destination."""

    SCHEMA = "delivery"
    CHANNELS: ClassVar[tuple[str, ...]] = ("webhook", "email")
    idempotency_key: str  # alert id + alertee: a receiver drops a repeat by it
    alert_id: str
    event_id: str
    event_type: str
    camera_id: str
    score: float
    summary: str
    subscription: str
    alertee: str
    channel: str  # webhook | email
    destination: str  # the destination id; the worker sends only to destinations in its own config
    target: str  # the URL or address, for people reading the status
    key_frame_path: str  # the annotated key frame, relative to the data folder
    alert_path: str
    captured_at: float
    alerted_at: float
    grouped_count: int = 0  # alerts the cooldown held back, reported with this one
    grouped_event_ids: list[str] = field(default_factory=list)

    FIELDS: ClassVar[dict[str, Check]] = {
        "idempotency_key": _text(300), "alert_id": _ID, "event_id": _ID, "event_type": _EVENT_TYPE,
        "camera_id": _CAMERA, "score": _SCORE, "summary": _TEXT, "subscription": _NAME, "alertee": _ID,
        "channel": _one_of(CHANNELS), "destination": _ID, "target": _text(2000),
        "key_frame_path": _relative_path, "alert_path": _relative_path, "captured_at": _TIME,
        "alerted_at": _TIME, "grouped_count": _integer(0, 10**9), "grouped_event_ids": _id_list(100),
    }


@dataclass(frozen=True)
class DeadLetter(_Message):
    """A message a client could not process, kept whole with the reason, on the dead-letter topic."""

    SCHEMA = "dead-letter"
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    error: str
    error_type: str
    client: str
    failed_at: float = field(default_factory=time.time)
    # A value too big to keep whole is kept as a prefix, with its full length and SHA-256.
    value_length: int = 0
    value_sha256: str | None = None
    truncated: bool = False

    FIELDS: ClassVar[dict[str, Check]] = {
        "source_topic": _topic, "partition": _integer(0, 2**31 - 1), "offset": _integer(0, 2**63 - 1),
        "key_b64": _key_base64, "value_b64": _base64, "error": _text(MAX_ERROR_TEXT, empty=True),
        "error_type": _NAME, "client": _NAME, "failed_at": _TIME,
        "value_length": _integer(0, 2**31 - 1), "value_sha256": _optional_sha256, "truncated": _flag,
    }

    def original_value(self) -> bytes:
        """The bytes of the message that failed."""
        return base64.b64decode(self.value_b64)


@dataclass(frozen=True)
class UploadError(_Message):
    """A refused upload on the error topic."""

    SCHEMA = "upload-error"
    status: int
    error: str
    filename: str
    camera_id: str
    size: int
    received_at: float = field(default_factory=time.time)

    # filename and camera_id are what the client sent, reported only and possibly why it was
    # refused, so they are free text (maybe empty), never ids.
    FIELDS: ClassVar[dict[str, Check]] = {
        "status": _integer(100, 599), "error": _text(MAX_ERROR_TEXT), "filename": _FREE_TEXT,
        "camera_id": _FREE_TEXT, "size": _integer(0, 2**63 - 1), "received_at": _TIME,
    }


@dataclass(frozen=True)
class CameraStatus(_Message):
    """A configured camera's health on the camera-status topic, keyed by camera_id (docs/messages.md)."""

    SCHEMA = "camera-status"
    STATES: ClassVar[tuple[str, ...]] = ("connecting", "online", "offline", "ended")
    camera_id: str
    state: str  # connecting | online | offline | ended (a file played to its end)
    since: float  # when the camera entered this state
    source_kind: str
    frames_read: int  # frames taken from the source
    frames_kept: int  # frames stored and announced
    frames_dropped: int  # frames the fps sampling skipped, or the receiver could not keep up with
    reconnects: int
    last_frame_at: float | None  # wall clock at grab of the last kept frame
    last_image_id: str | None
    offline_after_s: float  # how long offline before it is an `offline` event
    reason: str = ""  # why offline or ended, one line
    reported_at: float = field(default_factory=time.time)

    FIELDS: ClassVar[dict[str, Check]] = {
        "camera_id": _CAMERA, "state": _one_of(STATES), "since": _TIME, "source_kind": _NAME,
        "frames_read": _integer(0, 2**63 - 1), "frames_kept": _integer(0, 2**63 - 1),
        "frames_dropped": _integer(0, 2**63 - 1), "reconnects": _integer(0, 2**63 - 1),
        "last_frame_at": _optional(_TIME), "last_image_id": _optional(_ID),
        "offline_after_s": _number(0.1, 86_400.0), "reason": _text(MAX_TEXT, empty=True), "reported_at": _TIME,
    }


def b64(data: bytes | None) -> str | None:
    """Base64 text of some bytes, or None."""
    return None if data is None else base64.b64encode(data).decode("ascii")
