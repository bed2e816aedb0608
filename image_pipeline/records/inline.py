"""Image messages that carry their JPEG (schema version 2): a JSON envelope line, a newline, the bytes.

Version 1 is JSON alone and names a file in the receiver's image database. Version 2 keeps every
field of version 1 (checked the same way), adds `data_bytes`, and is followed by the image itself,
so a consumer on another host needs no access to the receiver's disk. JSON text never holds a raw
newline, so the first newline ends the envelope.
"""

from __future__ import annotations

import json
from typing import Any

from image_pipeline.errors import BadInputError
from image_pipeline.messages import SCHEMA_VERSION, ImageMessage, MessageError, parse_json

INLINE_VERSION = 2
TRANSPORTS = ("files", "inline")
ENVELOPE_SLACK = 64 * 1024  # room for the JSON line and Kafka's record overhead above the image limit


class ImageTooLargeError(BadInputError):
    """An image larger than inline transport may carry (limits.max_image_bytes)."""


def message_limit(max_image_bytes: int) -> int:
    """max.message.bytes of the images topic and max_request_size of its producer in inline mode."""
    return max_image_bytes + ENVELOPE_SLACK


def encode_inline(message: ImageMessage, data: bytes, max_image_bytes: int) -> bytes:
    """A version 2 value: the message's fields plus data_bytes, a newline, then the image bytes."""
    if len(data) > max_image_bytes:
        raise ImageTooLargeError(
            f"image {message.image_id} is {len(data):,} bytes, more than inline transport carries "
            f"(limits.max_image_bytes = {max_image_bytes:,}); it was not announced")
    head = {**message.to_dict(), "version": INLINE_VERSION, "data_bytes": len(data)}
    return json.dumps(head, separators=(",", ":")).encode("utf-8") + b"\n" + data


def split_value(raw: bytes | None) -> tuple[dict[str, Any], bytes | None]:
    """The JSON fields of an image message (as version 1) and its inline bytes, if it is version 2."""
    if raw is None or b"\n" not in raw[:1 << 20]:
        return parse_json(raw), None
    head, _, data = raw.partition(b"\n")
    fields = parse_json(head)
    if fields.get("version") != INLINE_VERSION or type(fields.get("version")) is not int:
        raise MessageError(f"a value with inline bytes must be image version {INLINE_VERSION}")
    size = fields.pop("data_bytes", None)
    if type(size) is not int or size != len(data):
        raise MessageError(f"data_bytes {size!r} does not match the {len(data)} bytes that follow")
    return {**fields, "version": SCHEMA_VERSION}, data


def listed_fields(raw: bytes | None) -> dict[str, Any]:
    """A value's JSON as sent, without inline image bytes (for listings of any topic)."""
    if raw is not None and b"\n" in raw[:1 << 20]:
        return parse_json(raw.partition(b"\n")[0])
    return parse_json(raw)
