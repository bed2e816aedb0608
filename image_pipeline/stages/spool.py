"""Prerendered captures spooled to an unlinked temp file, so memory stays flat at any frame count.

`--prerender` draws every frame before sending any (the camera simulation must not compete with the
pipeline for CPU while latency is measured). Kept in a list, 2,000 640x480 frames held ~300 MB; on
disk, one capture at a time is in memory.
"""

from __future__ import annotations

import pickle
import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from image_pipeline.stages.publishing import Capture

_LENGTH = struct.Struct(">Q")


def spool(captures: Iterable[Capture]) -> Iterator[Capture]:
    """Draw every capture now, then give them back in order from disk.

    The file is private to this process (unlinked at creation), so pickle reads only what it wrote.
    """
    handle = tempfile.TemporaryFile(prefix="receiver-prerender-")  # noqa: SIM115 - _read_back closes it
    count = 0
    for capture in captures:
        blob = pickle.dumps(capture, protocol=pickle.HIGHEST_PROTOCOL)
        handle.write(_LENGTH.pack(len(blob)))
        handle.write(blob)
        count += 1
    handle.flush()
    handle.seek(0)
    return _read_back(handle, count)


def _read_back(handle: IO[bytes], count: int) -> Iterator[Capture]:
    with handle:
        for _ in range(count):
            (length,) = _LENGTH.unpack(handle.read(_LENGTH.size))
            yield pickle.loads(handle.read(length))
