"""Frame sources: video files, RTSP and HTTP MJPEG streams through OpenCV's VideoCapture, folders, synthesis.

A source hands out decoded BGR frames one at a time and says when it has no more. Network sources
open and read under OpenCV's FFmpeg timeouts (CAP_PROP_OPEN_TIMEOUT_MSEC, CAP_PROP_READ_TIMEOUT_MSEC),
so a stream that connects but never sends a frame ends a read instead of blocking it for ever; the
reader's watchdog (reader.py) covers a backend that ignores them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from image_pipeline.cameras.settings import CameraConfig, SourceKind, source_path
from image_pipeline.vision.imaging import ImageError, decode

logger = logging.getLogger(__name__)
FOLDER_EXTS = (".jpg", ".jpeg", ".png")


class OpenError(Exception):
    """A source could not be opened; the message is one line (missing file, refused, timed out)."""


@dataclass
class Grab:
    """One decoded frame; position_s is its time within a file, None for a live stream."""

    image: np.ndarray
    position_s: float | None
    truth: list[dict[str, Any]] | None = None  # synthesized frames only


class FrameSource(Protocol):
    """What the reader needs from a source: grab every frame, retrieve (convert) only the kept ones."""

    native_fps: float  # frames per second of a file (0 when unknown or live)
    expected_frames: int  # frames a file says it holds (0 when unknown or live)

    def grab(self) -> bool:
        """Advance to the next frame; False at the end of a file or when a stream is lost."""

    def retrieve(self) -> Grab | None:
        """The frame grab() advanced to, decoded to BGR; None if it cannot be."""

    def position(self) -> float | None:
        """The grabbed frame's time within a file (seconds); None for a live stream."""

    def close(self) -> None:
        """Release the source."""


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own stderr lines; our one-line errors say what went wrong."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg starts
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class CaptureSource:
    """A video file or a stream, read through VideoCapture's FFmpeg backend."""

    def __init__(self, camera: CameraConfig) -> None:
        self.kind = camera.kind
        self.native_fps = 0.0
        self.expected_frames = 0
        self._index = 0
        target = source_path(camera.source) if self.kind is SourceKind.FILE else camera.source
        if self.kind is SourceKind.FILE and not Path(target).is_file():
            raise OpenError(f"no such video file: {target}")
        timeout_ms = int(camera.read_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        self._cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not self._cap.isOpened():
            self._cap.release()
            what = "cannot decode video file" if self.kind is SourceKind.FILE else "cannot connect to stream"
            raise OpenError(f"{what} {target} (refused, timed out, or not a video)")
        if self.kind is SourceKind.FILE:
            fps = self._cap.get(cv2.CAP_PROP_FPS)
            self.native_fps = fps if 0 < fps < 1000 else 25.0
            self.expected_frames = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def grab(self) -> bool:
        """Demux and decode the next frame, without the colour conversion that retrieve() does.

        Most frames of a 25 fps stream sampled to 5 fps are only grabbed: the conversion to BGR
        is skipped for them (docs/performance.md, "Real cameras").
        """
        try:
            ok = bool(self._cap.grab())
        except cv2.error as exc:  # a decoder failure inside FFmpeg
            logger.debug("grab failed: %s", exc)
            return False
        self._index += ok
        return ok

    def retrieve(self) -> Grab | None:
        """The grabbed frame as BGR; None when the decoder gives nothing."""
        try:
            ok, image = self._cap.retrieve()
        except cv2.error as exc:
            logger.debug("retrieve failed: %s", exc)
            return None
        if not ok or image is None or image.size == 0:
            return None
        return Grab(image, self.position())

    def position(self) -> float | None:
        """The grabbed frame's time in a file; None for a live stream."""
        return (self._index - 1) / self.native_fps if self.kind is SourceKind.FILE else None

    def close(self) -> None:
        """Release the capture (closes the connection)."""
        self._cap.release()


class FolderSource:
    """The .jpg/.png files of a folder in name order, one frame each; undecodable files are skipped."""

    def __init__(self, camera: CameraConfig, limits: Any) -> None:
        folder = Path(source_path(camera.source))
        if not folder.is_dir():
            raise OpenError(f"no such folder: {folder}")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FOLDER_EXTS and p.is_file())
        if not self._files:
            raise OpenError(f"no .jpg or .png files in {folder}")
        self._limits = limits
        self._index = 0
        self._current: Grab | None = None
        self.native_fps = camera.fps or 25.0  # one file per frame slot
        self.expected_frames = len(self._files)

    def grab(self) -> bool:
        """Load the next decodable image; False after the last file."""
        self._current = None
        while self._index < len(self._files):
            path = self._files[self._index]
            position = self._index / self.native_fps
            self._index += 1
            try:
                self._current = Grab(decode(path.read_bytes(), self._limits), position)
                return True
            except (ImageError, OSError) as exc:
                logger.warning("skipped %s: %s", path.name, exc)
        return False

    def retrieve(self) -> Grab | None:
        """The image grab() loaded."""
        return self._current

    def position(self) -> float | None:
        """The grabbed image's slot in the folder's timeline."""
        return None if self._current is None else self._current.position_s

    def close(self) -> None:
        """Nothing to release."""


class SyntheticSource:
    """The simulator's frames of one camera, with their ground truth (sim/synthesis.py)."""

    def __init__(self, frames: Iterator[Any], count: int, fps: float) -> None:
        self._frames = frames
        self._index = 0
        self._current: Grab | None = None
        self.native_fps = fps or 10.0
        self.expected_frames = count

    def grab(self) -> bool:
        """Draw the next frame; False after the last."""
        frame = next(self._frames, None)
        self._current = None if frame is None else Grab(frame.image, self._index / self.native_fps,
                                                       [t.to_dict() for t in frame.truth])
        self._index += frame is not None
        return frame is not None

    def retrieve(self) -> Grab | None:
        """The frame grab() drew."""
        return self._current

    def position(self) -> float | None:
        """The drawn frame's time."""
        return None if self._current is None else self._current.position_s

    def close(self) -> None:
        """Nothing to release."""


def open_source(camera: CameraConfig, cfg: Any) -> FrameSource:
    """Open a camera's source by its kind; OpenError (one line) when it cannot be opened."""
    kind = camera.kind
    if kind is SourceKind.FOLDER:
        return FolderSource(camera, cfg.limits)
    if kind is SourceKind.SYNTHETIC:
        # Imported here: only synthetic cameras need the simulator and its background photos.
        from image_pipeline.config import parse_size
        from image_pipeline.sim.synthesis import load_backgrounds, synthesize_camera
        try:
            backgrounds = load_backgrounds(cfg.originals_dir)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise OpenError(f"no background photos for synthesis: {exc}") from None
        size = parse_size(camera.size or cfg.receiver.size)
        r = cfg.receiver
        frames = synthesize_camera(camera.id, r.frames, r.seed, size, backgrounds)
        return SyntheticSource(frames, r.frames, camera.fps or r.fps)
    return CaptureSource(camera)
