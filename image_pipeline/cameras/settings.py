"""The camera list of config.yaml: one entry per camera, and which kind of source its `source` names.

Pure and free of OpenCV, so config.py can validate the list before anything starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from image_pipeline.storage import UnsafePathError, brief_repr, check_camera_id

VIDEO_EXTS = (".mp4", ".avi", ".mkv")
BACKOFF_CAP_S = 30.0  # reconnect waits double from 1 s up to this


class SourceKind(StrEnum):
    """Where a camera's frames come from; chosen from the source's URL scheme or file name."""

    SYNTHETIC = "synthetic"
    FOLDER = "folder"
    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"

    @property
    def live(self) -> bool:
        """A stream that can drop and come back (reconnect), not a file that ends."""
        return self in (SourceKind.RTSP, SourceKind.HTTP)


class SourceError(ValueError):
    """A source that names no kind we read: unknown scheme or extension."""


def source_kind(source: str) -> SourceKind:
    """The kind of a camera source; an unknown scheme or extension raises SourceError in one line."""
    text = source.strip()
    if text == "synthetic":
        return SourceKind.SYNTHETIC
    scheme = urlsplit(text).scheme.lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) else ""
    if scheme == "rtsp":
        return SourceKind.RTSP
    if scheme in ("http", "https"):
        return SourceKind.HTTP
    if scheme and scheme != "file":
        raise SourceError(f"unknown scheme {scheme}:// in {brief_repr(text)} (known: rtsp, http, https, file)")
    path = text[len("file://"):] if scheme == "file" else text
    if not path:
        raise SourceError("empty source")
    suffix = "." + path.rsplit(".", 1)[1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix in VIDEO_EXTS:
        return SourceKind.FILE
    if suffix == "" or path.endswith("/"):
        return SourceKind.FOLDER  # a folder of .jpg/.png files, as --source reads it
    raise SourceError(
        f"unknown extension {suffix} in {brief_repr(text)} (known: {', '.join(VIDEO_EXTS)}, a folder,"
        " rtsp://, http(s):// or synthetic)"
    )


def source_path(source: str) -> str:
    """The file-system path of a file or folder source (without file://)."""
    text = source.strip()
    return text[len("file://"):] if text.lower().startswith("file://") else text


@dataclass(frozen=True)
class CameraConfig:
    """One camera of config.yaml's `cameras:` list."""

    id: str
    source: str
    fps: float = 5.0  # frames kept per second, sampled from the stream; 0 keeps every frame
    size: str = ""  # WxH to resize to; empty keeps the source's size
    jpeg_quality: int = 90
    offline_after_s: float = 30.0  # offline this long becomes an `offline` event (and an alert)
    read_timeout_s: float = 10.0  # opening or reading longer than this is a lost stream

    @property
    def kind(self) -> SourceKind:
        """Which kind of source this camera reads."""
        return source_kind(self.source)


_RANGES = {"fps": (0.0, 1000.0), "jpeg_quality": (1, 100), "offline_after_s": (0.1, 86_400.0),
           "read_timeout_s": (0.1, 3600.0)}


def validate_cameras(cameras: tuple[CameraConfig, ...]) -> None:
    """Ids unique and safe, sources of a known kind, numbers in range; ValueError names the key."""
    seen: set[str] = set()
    for i, cam in enumerate(cameras):
        where = f"cameras[{i}]"
        try:
            check_camera_id(cam.id)
        except UnsafePathError:
            raise ValueError(f"{where}.id: not a camera id (letters, digits and '._-'): {brief_repr(cam.id)}") from None
        if cam.id in seen:
            raise ValueError(f"{where}.id: camera {cam.id} is listed twice")
        seen.add(cam.id)
        try:
            source_kind(cam.source)
        except SourceError as exc:
            raise ValueError(f"{where}.source: {exc}") from None
        for key, (low, high) in _RANGES.items():
            value = getattr(cam, key)
            if not low <= value <= high:
                raise ValueError(f"{where}.{key}: must be between {low} and {high}, got {brief_repr(value)}")


def find_camera(cameras: tuple[CameraConfig, ...], camera_id: str) -> CameraConfig:
    """The configured camera with this id; ValueError listing the known ids otherwise."""
    for cam in cameras:
        if cam.id == camera_id:
            return cam
    known = ", ".join(c.id for c in cameras) or "none configured"
    raise ValueError(f"--camera {brief_repr(camera_id)}: no such camera in config.yaml's cameras (known: {known})")
