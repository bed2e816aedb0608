"""The image database: where images are stored, how their ids look, and how they are announced."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from image_pipeline.config import Config
from image_pipeline.errors import BadInputError
from image_pipeline.messages import ImageMessage
from image_pipeline.records.inline import ImageTooLargeError, encode_inline, split_value
from image_pipeline.storage import atomic_write_bytes, check_camera_id, image_relpath, safe_join
from image_pipeline.vision.imaging import decode

if TYPE_CHECKING:  # only for hints: id and path helpers stay usable without Kafka
    from kafka import KafkaProducer
    from kafka.future import Future

_IMAGE_FILE = re.compile(r"^(?P<image_id>[A-Za-z0-9_-]+-(?P<seq>\d{6,}))\.(?:jpg|png)$")


def image_id_for(camera_id: str, seq: int) -> str:
    """The id of a camera's seq-th image; zero-padded so names sort in capture order."""
    return f"{check_camera_id(camera_id)}-{seq:08d}"


def capture_time(seconds: float) -> float:
    """A capture time rounded to the millisecond, so the file's mtime can carry it exactly."""
    return round(seconds * 1000) / 1000


def stored_capture_time(path: Path) -> float:
    """The capture time a stored image was stamped with (see ImageAnnouncer.store)."""
    return (path.stat().st_mtime_ns // 1_000_000) / 1000


def stored_relpath(images_dir: Path, camera_id: str, image_id: str) -> str:
    """Path of a stored image relative to the database: .png if that is what was stored, else .jpg."""
    png = image_relpath(camera_id, image_id, "png")
    return png if (images_dir / png).exists() else image_relpath(camera_id, image_id)


@dataclass(frozen=True)
class StoredImage:
    """One original image file in the database."""

    image_id: str
    seq: int
    path: Path


def camera_history(images_dir: Path, camera_id: str, before_seq: int, limit: int) -> list[StoredImage]:
    """The camera's last `limit` stored originals with seq < before_seq, oldest first.

    Derived files (grayscale copies, thumbnails) carry an extra suffix and are skipped.
    """
    folder = safe_join(images_dir, check_camera_id(camera_id))
    if not folder.is_dir() or limit <= 0:
        return []
    found: list[StoredImage] = []
    for path in folder.iterdir():
        match = _IMAGE_FILE.match(path.name)
        if match and int(match.group("seq")) < before_seq:
            found.append(StoredImage(match.group("image_id"), int(match.group("seq")), path))
    found.sort(key=lambda s: s.seq)
    return found[-limit:]


@dataclass(frozen=True)
class Announced:
    """An image message with the absolute path of its file, resolved once."""

    message: ImageMessage
    path: Path
    data: bytes | None = None  # the image itself, when the message carries it (version 2, inline)


def parse_announcement(cfg: Config, value: bytes | None) -> Announced:
    """An image message from Kafka; a path outside the database is refused by safe_join before all else."""
    data, inline = split_value(value)
    raw = data.get("path")
    # safe_join is the one home of path containment and of its message, so it runs first.
    path = safe_join(cfg.images_dir, raw) if isinstance(raw, str) else None
    message = ImageMessage.from_dict(data)
    return Announced(message, path or safe_join(cfg.images_dir, message.path), inline)


def read_announced(announced: Announced) -> bytes:
    """The bytes of an announced image; a missing file is bad input, other OSErrors are the caller's."""
    if announced.data is not None:
        return announced.data  # inline: the message is the image; the receiver's disk is not needed
    try:
        return announced.path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise BadInputError(
            f"announced image is missing from the image database: {announced.message.path}") from None


def load_image(cfg: Config, announced: Announced) -> np.ndarray:
    """Read and fully decode an announced image; a missing file or bad bytes raise BadInputError."""
    return decode(read_announced(announced), cfg.limits)


class ImageAnnouncer:
    """Stores image bytes atomically, then announces them on the images topic keyed by camera."""

    def __init__(self, cfg: Config, producer: KafkaProducer, fsync: bool = True) -> None:
        self.cfg = cfg
        self.producer = producer
        self.fsync = fsync

    def store(self, camera_id: str, image_id: str, data: bytes, captured_at: float, ext: str = "jpg") -> str:
        """Write the file, stamped with its capture time; returns its path relative to the database."""
        rel = image_relpath(camera_id, image_id, ext)
        path = safe_join(self.cfg.images_dir, rel)
        atomic_write_bytes(path, data, fsync=self.fsync)
        stamp_ns = round(captured_at * 1000) * 1_000_000
        os.utime(path, ns=(stamp_ns, stamp_ns))
        return rel

    def announce(self, message: ImageMessage, data: bytes | None = None) -> Future:
        """Send the announcement (with the image in inline transport); the future fails if Kafka never takes it."""
        value = message.encode()
        if self.cfg.transport == "inline" and data is not None:
            value = encode_inline(message, data, self.cfg.limits.max_image_bytes)
        return self.producer.send(self.cfg.topics.images.name, key=message.camera_id.encode("utf-8"), value=value)

    def check_size(self, image_id: str, data: bytes) -> None:
        """Refuse, before anything is stored, an image that inline transport cannot carry."""
        limit = self.cfg.limits.max_image_bytes
        if self.cfg.transport == "inline" and len(data) > limit:
            raise ImageTooLargeError(
                f"image {image_id} is {len(data):,} bytes, more than inline transport carries "
                f"(limits.max_image_bytes = {limit:,}); it was neither stored nor announced")

    def store_and_announce(
        self, camera_id: str, seq: int, data: bytes, width: int, height: int,
        source: str, image_id: str | None = None, ext: str = "jpg", captured_at: float | None = None,
    ) -> tuple[ImageMessage, Future]:
        """Store first, then announce, so no announced image is ever missing from disk."""
        image_id = image_id or image_id_for(camera_id, seq)
        captured_at = capture_time(time.time() if captured_at is None else captured_at)
        self.check_size(image_id, data)
        rel = self.store(camera_id, image_id, data, captured_at, ext)
        message = ImageMessage(
            image_id=image_id, camera_id=camera_id, seq=seq, path=rel, width=width, height=height,
            captured_at=captured_at, source=source,
        )
        return message, self.announce(message, data)
