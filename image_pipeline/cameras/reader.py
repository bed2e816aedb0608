"""One camera's reader thread: open, read, sample, resize, encode, hand on; reconnect with backoff on loss.

A reader never raises and never ends the process: a source that cannot be opened or is lost is one
log line and an offline status, then a wait that doubles from 1 s up to 30 s before the next try.
A file (or folder, or synthesis) that reaches its end is `ended`, not lost, and is not replayed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from image_pipeline.cameras.sampling import Sampler, backoff_s
from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.cameras.sources import FrameSource, Grab, OpenError, open_source
from image_pipeline.cameras.status import CameraHealth
from image_pipeline.config import Config, parse_size
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.stages.publishing import Capture
from image_pipeline.vision.imaging import encode_jpeg

logger = logging.getLogger(__name__)
EARLY_END_SHARE = 0.98  # a file that ends before this share of its announced frames was cut short

# Hands a capture on; block=False may refuse it (the receiver is behind): returns whether it was taken.
Emit = Callable[[Capture, bool], bool]


class Outcome(Enum):
    """How one connection's reading ended."""

    DONE = "done"  # end of a file, or the frame limit
    LOST = "lost"  # a live stream stopped sending
    STOPPED = "stopped"  # the process is stopping


@dataclass(frozen=True)
class ReaderLimits:
    """Bounds of a run: frames kept per camera (None: unbounded)."""

    max_frames: int | None = None


class CameraReader:
    """Reads one camera in its own thread until stopped, its file ends, or its frame limit."""

    def __init__(self, camera: CameraConfig, cfg: Config, health: CameraHealth, emit: Emit,
                 stop: threading.Event, first_seq: int = 0, limits: ReaderLimits | None = None,
                 opener: Callable[[CameraConfig, Config], FrameSource] = open_source) -> None:
        self.camera = camera
        self.cfg = cfg
        self.health = health
        self.emit = emit
        self.stop = stop
        self.seq = first_seq
        self.limits = limits or ReaderLimits()
        self.opener = opener
        self.live = camera.kind.live
        self.size = parse_size(camera.size, f"camera {camera.id} size") if camera.size else None
        self._established: tuple[int, int] | None = self.size  # the size every kept frame gets
        self._seen_sizes: set[tuple[int, int]] = set()
        self.thread = threading.Thread(target=self.run, name=f"camera-{camera.id}", daemon=True)

    def run(self) -> None:
        """The thread's body: read until done or stopped; every failure is a log line, never a traceback."""
        try:
            self._run()
        except Exception as exc:  # a bug or an OpenCV surprise must not take the other cameras down
            logger.error("camera=%s reader stopped by an unexpected %s: %s", self.camera.id, type(exc).__name__, exc)
            logger.debug("camera=%s reader failure", self.camera.id, exc_info=True)
            self.health.set_state("offline", f"reader failed: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            source = self._open(attempt)
            if source is not None:
                kept_before = self.health.frames_kept
                try:
                    outcome, reason = self._read(source)
                finally:
                    source.close()
                if outcome is not Outcome.LOST:
                    self._finish(outcome, reason)
                    return
                if self.health.frames_kept > kept_before:
                    attempt = 0  # it worked for a while: start the backoff afresh
                self._offline(f"stream lost after {self.health.frames_read} frames read", attempt)
            if self.stop.wait(backoff_s(attempt)):
                return
            attempt += 1
            self.health.count_reconnect()

    def _open(self, attempt: int) -> FrameSource | None:
        self.health.enter_call()
        try:
            return self.opener(self.camera, self.cfg)
        except OpenError as exc:
            self._offline(str(exc), attempt)
            return None
        finally:
            self.health.leave_call()

    def _offline(self, reason: str, attempt: int) -> None:
        self.health.set_state("offline", reason)
        logger.warning("camera=%s offline: %s; next try in %.0f s", self.camera.id, reason, backoff_s(attempt))

    def _finish(self, outcome: Outcome, reason: str) -> None:
        if outcome is Outcome.DONE:
            self.health.set_state("ended", reason)
            logger.info("camera=%s ended: %s", self.camera.id, reason)

    def _read(self, source: FrameSource) -> tuple[Outcome, str]:
        """Read one connection (or one pass of a file) to its end."""
        sampler = Sampler(self.camera.fps)
        began: tuple[float, float] | None = None  # (monotonic, position) of the first kept file frame
        read = 0
        while not self.stop.is_set():
            self.health.enter_call()
            grabbed = source.grab()
            self.health.leave_call()
            if not grabbed:
                return self._end_of(source, read)
            read += 1
            self.health.count_read()
            position = source.position()
            if not sampler.keep(time.monotonic() if position is None else position):
                self.health.count_dropped()
                continue
            grab = source.retrieve()  # only kept frames pay for the conversion to BGR
            if grab is None:
                return self._end_of(source, read)
            if read == 1 and self.health.set_state("online"):
                height, width = grab.image.shape[:2]
                logger.info("camera=%s online: %dx%d from %s", self.camera.id, width, height, self.camera.kind)
            if position is not None and self.camera.fps > 0:
                began = began or (time.monotonic(), position)
                if self.stop.wait(max(0.0, began[0] + position - began[1] - time.monotonic())):
                    break
            if self._hand_on(grab) and self._at_limit():
                return Outcome.DONE, f"frame limit of {self.limits.max_frames} reached"
        return Outcome.STOPPED, "receiver stopped"

    def _end_of(self, source: FrameSource, read: int) -> tuple[Outcome, str]:
        if self.live:
            return Outcome.LOST, "stream lost"
        expected = source.expected_frames
        if expected and read < expected * EARLY_END_SHARE:
            reason = f"file ended early at frame {read} of {expected} (truncated or corrupt)"
            logger.warning("camera=%s %s", self.camera.id, reason)
            return Outcome.DONE, reason
        return Outcome.DONE, f"end of source after {read} frames"

    def _at_limit(self) -> bool:
        limit = self.limits.max_frames
        return limit is not None and self.health.frames_kept >= limit

    def _hand_on(self, grab: Grab) -> bool:
        """Resize, encode and hand the frame on; returns whether it was taken."""
        grabbed_at = time.time()  # capture time: the wall clock at grab, as stream timestamps are unreliable
        image = self._fit(grab.image)
        height, width = image.shape[:2]
        capture = Capture(self.camera.id, self.seq, encode_jpeg(image, self.camera.jpeg_quality), width, height,
                          "jpg", grab.truth, grabbed_at, source="camera", stamped=True)
        if not self.emit(capture, not self.live):
            self.health.count_dropped()
            return False
        self.health.count_kept(image_id_for(self.camera.id, self.seq), grabbed_at)
        self.seq += 1
        return True

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """The frame at the camera's size: the configured one, else the first frame's (a stream may change it)."""
        height, width = image.shape[:2]
        if self._established is None:
            self._established = (width, height)
        target = self._established
        if (width, height) == target:
            return image
        if self.size is None and (width, height) not in self._seen_sizes:
            self._seen_sizes.add((width, height))
            logger.warning("camera=%s resolution changed from %dx%d to %dx%d; resizing to %dx%d",
                           self.camera.id, target[0], target[1], width, height, target[0], target[1])
        return cv2.resize(image, target, interpolation=cv2.INTER_AREA)
