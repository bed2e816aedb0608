"""Message schemas, one per topic. Every value is JSON carrying a schema name and version.

docs/messages.md documents each with an example. decode() checks every field's type and range, so a
consumer gets one MessageError line naming the field, never a TypeError deep inside a stage. Building a
message does not check: producers build theirs from checked values, and tests build hostile ones on
purpose to exercise the consumers' own defences (safe_join and the like).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import PurePosixPath
from typing import Any, ClassVar, TypeVar

from image_pipeline import storage
from image_pipeline.errors import BadInputError
from image_pipeline.model import EVENT_TYPES
from image_pipeline.storage import brief_repr

SCHEMA_VERSION = 1

# Ours are under 4 KB; Kafka's default record limit is about 1 MB, so a dead letter fits too.
MAX_MESSAGE_BYTES = 1 << 20
# Ours nest three deep (alert, alertees, alertee); deeper data would only feed recursion elsewhere.
MAX_DEPTH = 16
# Far beyond any offset or size, and far below Python's 4300-digit int() limit.
MAX_INT_DIGITS = 20
# 2100-01-01 UTC: a later capture time is a bug, and time.gmtime overflows not far beyond.
MAX_EPOCH = 4_102_444_800
MAX_SEQ = 10**12
MAX_SIDE = 100_000
MAX_TEXT = 1024
MAX_ERROR_TEXT = 65_536
MAX_ALERTEES = 1000
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")

Check = Callable[[Any], None]  # raises ValueError with a reason such as "must be ..."


class MessageError(BadInputError):
    """A message value that is not JSON, has an unknown schema or version, or a missing or bad field."""


T = TypeVar("T", bound="_Message")


def _text(max_len: int = MAX_TEXT, empty: bool = False) -> Check:
    """A check for a string of at most max_len characters, non-empty unless empty is True."""

    def check(value: Any) -> None:
        if not isinstance(value, str) or (not value and not empty):
            raise ValueError(f"must be a {'' if empty else 'non-empty '}string, got {brief_repr(value)}")
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters, got {len(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate escape (\ud800) parses, then breaks print() and every file write.
            raise ValueError("is not valid Unicode (lone surrogate)") from None

    return check


def _integer(low: int, high: int) -> Check:
    """A check for a real int (not bool) with low <= value <= high."""

    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}, got {brief_repr(value)}")

    return check


def _number(low: float, high: float, what: str = "a number", below_high: bool = False) -> Check:
    """A check for a finite int or float (not bool) from low to high (or to just below high)."""
    span = f"from {low} to {'before ' if below_high else ''}{high}"

    def check(value: Any) -> None:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value) or not low <= value <= high or (below_high and value == high):
            raise ValueError(f"must be {what} {span}, got {brief_repr(value)}")

    return check


def _one_of(choices: tuple[str, ...]) -> Check:
    """A check for one of a few known strings."""

    def check(value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {brief_repr(value)}")

    return check


def _id_check(check: Callable[[str], str], max_len: int) -> Check:
    """A check through storage's own id rule (check_id or check_camera_id)."""

    def check_value(value: Any) -> None:
        try:
            check(value)
        except storage.UnsafePathError:
            raise ValueError(f"must be an id of letters, digits and '._-' (at most {max_len}), got "
                             f"{brief_repr(value)}") from None

    return check_value


def _escapes(path: str) -> bool:
    return path.startswith("/") or "\\" in path or "\x00" in path or ".." in PurePosixPath(path).parts


def _relative_path(value: Any) -> None:
    _TEXT(value)
    if _escapes(value):
        raise ValueError(f"must be a relative path inside the data folder, got {brief_repr(value)}")


def _base64(value: Any) -> None:
    _text(2 * MAX_MESSAGE_BYTES, empty=True)(value)
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"must be base64 text, got {brief_repr(value)}") from None


def _key_base64(value: Any) -> None:
    if value is not None:  # the record had no key
        _base64(value)


def _optional_sha256(value: Any) -> None:
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
        raise ValueError(f"must be a SHA-256 in hex or null, got {brief_repr(value)}")


def _flag(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {brief_repr(value)}")


def _alertees(value: Any) -> None:
    if not isinstance(value, list) or len(value) > MAX_ALERTEES:
        raise ValueError(f"must be a list of at most {MAX_ALERTEES} objects, got {brief_repr(value)}")
    for i, alertee in enumerate(value):
        if not isinstance(alertee, dict):
            raise ValueError(f"item {i} must be an object of strings, got {brief_repr(alertee)}")
        for key, item in alertee.items():
            try:
                _NAME(key)
                _FREE_TEXT(item)
            except ValueError as exc:
                raise ValueError(f"item {i} key {brief_repr(key)}: {exc}") from None


_TEXT = _text()
_FREE_TEXT = _text(empty=True)
_NAME = _text(200)
_TIME = _number(0, MAX_EPOCH, "epoch seconds", below_high=True)
_SEQ = _integer(0, MAX_SEQ - 1)
_SIDE = _integer(1, MAX_SIDE)
_SCORE = _number(0, 1)
_ID = _id_check(storage.check_id, storage.MAX_ID_LEN)
_CAMERA = _id_check(storage.check_camera_id, storage.MAX_CAMERA_ID_LEN)
_EVENT_TYPE = _one_of(EVENT_TYPES)


def _topic(value: Any) -> None:
    if not isinstance(value, str) or not _TOPIC_NAME.fullmatch(value):
        raise ValueError(f"must be a Kafka topic name, got {brief_repr(value)}")


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
    SOURCES: ClassVar[tuple[str, ...]] = ("synthetic", "directory", "upload")
    image_id: str
    camera_id: str
    seq: int
    path: str  # relative to the image database
    width: int
    height: int
    captured_at: float  # epoch seconds, taken by the receiver
    source: str = "synthetic"  # synthetic | directory | upload

    FIELDS: ClassVar[dict[str, Check]] = {
        "image_id": _ID, "camera_id": _CAMERA, "seq": _SEQ, "path": _TEXT, "width": _SIDE,
        "height": _SIDE, "captured_at": _TIME, "source": _one_of(SOURCES),
    }

    def _check_together(self) -> None:
        """The path must be exactly the one the image database gives this camera and image id."""
        # That rules out paths through a file, over-long names, and one image pointing at another's file.
        allowed = [storage.image_relpath(self.camera_id, self.image_id, ext) for ext in storage.IMAGE_EXTS]
        if self.path in allowed:
            return
        if _escapes(self.path):
            raise ValueError(f"path escapes the image database: {brief_repr(self.path)}")
        raise ValueError(f"path must be {allowed[0]!r} (or .png), got {brief_repr(self.path)}")


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


def b64(data: bytes | None) -> str | None:
    """Base64 text of some bytes, or None."""
    return None if data is None else base64.b64encode(data).decode("ascii")
