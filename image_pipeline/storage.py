"""Atomic writes and safe paths inside the data folders."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from image_pipeline.errors import BadInputError

# fullmatch, not match with "$": "$" also matches before a trailing newline.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Bounded so every derived name fits a file name: event ids are "{camera}-{event_type}-{seq:06d}",
# and files add suffixes such as "_annotated.jpg" or ".thumb.jpg".
MAX_ID_LEN = 128
MAX_CAMERA_ID_LEN = 64
IMAGE_EXTS = ("jpg", "png")


class UnsafePathError(BadInputError):
    """A path from a request or a message points outside the data folder it belongs to."""


def brief_repr(value: object, limit: int = 60) -> str:
    """A repr cut to about limit characters, so an error about hostile input stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits has no decimal repr
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_id(value: str, what: str = "id", max_len: int = MAX_ID_LEN) -> str:
    """Return value if it is a safe file-name component (letters, digits, '._-'), else raise."""
    if (
        not isinstance(value, str)
        or len(value) > max_len
        or not _SAFE_ID.fullmatch(value)
        or ".." in value
    ):
        raise UnsafePathError(
            f"invalid {what}: {brief_repr(value)} (letters, digits and '._-', at most {max_len} characters)"
        )
    return value


def check_camera_id(value: str, what: str = "camera_id") -> str:
    """Return value if it is a valid camera id: a safe id of at most MAX_CAMERA_ID_LEN characters."""
    return check_id(value, what, MAX_CAMERA_ID_LEN)


def image_relpath(camera_id: str, image_id: str, ext: str = "jpg") -> str:
    """Path of an image relative to the image database: the only path an image may have."""
    if ext not in IMAGE_EXTS:
        raise UnsafePathError(f"invalid image extension: {ext!r} (known: {', '.join(IMAGE_EXTS)})")
    return f"{check_camera_id(camera_id)}/{check_id(image_id, 'image_id')}.{ext}"


def safe_join(root: Path, relative: str | Path) -> Path:
    """Join a relative path to root, refusing anything that would land outside root."""
    rel = Path(relative)
    if rel.is_absolute() or "\x00" in str(relative):
        raise UnsafePathError(f"path must be relative to {root.name}/: {str(relative)!r}")
    root_resolved = root.resolve()
    candidate = (root_resolved / rel).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise UnsafePathError(f"path escapes {root.name}/: {str(relative)!r}")
    return candidate


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write data to path through a temp file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid is in the temp name, so a later process can tell an abandoned one (see below).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, fsync: bool = True) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: Path, obj: Any, fsync: bool = True) -> None:
    """Write JSON (sorted keys, so identical content gives identical bytes) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", fsync=fsync)


def append_line(path: Path, line: str) -> None:
    """Append one line and flush it to disk (ground truth is written this way)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _writer_alive(temp: Path) -> bool:
    """Whether the process named in a temp file's name (.<name>.<pid>.<random>.tmp) still runs."""
    parts = temp.name.split(".")
    if len(parts) < 5 or not parts[-3].isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(parts[-3]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_temp_files(*roots: Path) -> int:
    """Delete temp files whose writer died mid-write (kill -9); returns how many."""
    removed = 0
    for temp in leftover_temp_files(*roots):
        if not _writer_alive(temp):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def leftover_temp_files(*roots: Path) -> list[Path]:
    """Temp files that an interrupted atomic write left behind."""
    found: list[Path] = []
    for root in roots:
        if root.exists():
            found.extend(p for p in root.rglob(".*.tmp") if p.is_file())
    return found
