"""Field checks of the message schemas: each raises ValueError with a reason such as "must be ...".

messages.py declares which check each field of each schema gets; the limits are here.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from image_pipeline import storage
from image_pipeline.model import EVENT_TYPES
from image_pipeline.storage import brief_repr

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


def _optional(check: Check) -> Check:
    """A check that also accepts null (JSON's none)."""

    def check_value(value: Any) -> None:
        if value is not None:
            check(value)

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


def _id_list(max_items: int) -> Check:
    """A check for a list of at most max_items ids."""

    def check(value: Any) -> None:
        if not isinstance(value, list) or len(value) > max_items:
            raise ValueError(f"must be a list of at most {max_items} ids, got {brief_repr(value)}")
        for item in value:
            _ID(item)

    return check


def _topic(value: Any) -> None:
    if not isinstance(value, str) or not _TOPIC_NAME.fullmatch(value):
        raise ValueError(f"must be a Kafka topic name, got {brief_repr(value)}")
