"""Atomic writes and safe paths inside the data folders."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from image_pipeline.errors import BadInputError

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class UnsafePathError(BadInputError):
    """A path from a request or a message points outside the data folder it belongs to."""


def check_id(value: str, what: str = "id") -> str:
    """Return value if it is a safe file-name component (letters, digits, '._-'), else raise."""
    if not isinstance(value, str) or not _SAFE_ID.match(value) or ".." in value:
        raise UnsafePathError(f"invalid {what}: {value!r}")
    return value


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def leftover_temp_files(*roots: Path) -> list[Path]:
    """Temp files that an interrupted atomic write left behind."""
    found: list[Path] = []
    for root in roots:
        if root.exists():
            found.extend(p for p in root.rglob(".*.tmp") if p.is_file())
    return found
