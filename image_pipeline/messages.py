"""Message schemas, one per topic. Every value is JSON carrying a schema name and version.

docs/messages.md documents each with an example.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TypeVar

from image_pipeline.errors import BadInputError

SCHEMA_VERSION = 1


class MessageError(BadInputError):
    """A message value that is not JSON, has an unknown schema or version, or lacks fields."""


T = TypeVar("T", bound="_Message")


@dataclass(frozen=True)
class _Message:
    """Base of all messages: encode to and decode from JSON bytes with a schema check."""

    SCHEMA = ""

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
        data = parse_json(raw)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Validate a decoded dict against this schema."""
        if data.get("schema") != cls.SCHEMA:
            raise MessageError(f"expected schema {cls.SCHEMA!r}, got {data.get('schema')!r}")
        if data.get("version") != SCHEMA_VERSION:
            raise MessageError(
                f"unsupported {cls.SCHEMA} version {data.get('version')!r} (supported: {SCHEMA_VERSION})"
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
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise MessageError(f"bad {cls.SCHEMA} message: {exc}") from None


def parse_json(raw: bytes | None) -> dict[str, Any]:
    """Decode a JSON object from bytes, or raise MessageError."""
    if raw is None:
        raise MessageError("message has no value")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"message is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError(f"message is JSON but not an object: {type(data).__name__}")
    return data


def _require(cond: bool, reason: str) -> None:
    if not cond:
        raise ValueError(reason)


@dataclass(frozen=True)
class ImageMessage(_Message):
    """Announces one stored image on the images topic; keyed by camera_id."""

    SCHEMA = "image"
    image_id: str
    camera_id: str
    seq: int
    path: str  # relative to the image database
    width: int
    height: int
    captured_at: float  # epoch seconds, taken by the receiver
    source: str = "synthetic"  # synthetic | directory | upload

    def __post_init__(self) -> None:
        _require(isinstance(self.image_id, str) and bool(self.image_id), "image_id must be a string")
        _require(isinstance(self.camera_id, str) and bool(self.camera_id), "camera_id must be a string")
        _require(isinstance(self.seq, int) and self.seq >= 0, "seq must be a non-negative integer")
        _require(isinstance(self.path, str) and bool(self.path), "path must be a string")
        _require(isinstance(self.captured_at, int | float), "captured_at must be a number")
        for name in ("width", "height"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value > 0, f"{name} must be a positive integer")


@dataclass(frozen=True)
class EventMessage(_Message):
    """An event's lifecycle step (start, update, end) on the events topic; keyed by camera_id."""

    SCHEMA = "event"
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

    def __post_init__(self) -> None:
        _require(self.phase in ("start", "update", "end"), f"unknown phase {self.phase!r}")
        _require(isinstance(self.score, int | float), "score must be a number")


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


def b64(data: bytes | None) -> str | None:
    """Base64 text of some bytes, or None."""
    return None if data is None else base64.b64encode(data).decode("ascii")
