"""The receiver's camera mode: one reader thread per configured camera, one storer, one status publisher.

Readers of live streams never wait for the storer: when it is behind, a frame is dropped (and
counted), so a stream's buffer never backs up into stale frames. Files, folders and synthesis have
no deadline, so their readers wait instead and every frame is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from image_pipeline.cameras.reader import CameraReader, ReaderLimits
from image_pipeline.cameras.settings import CameraConfig, find_camera
from image_pipeline.cameras.sources import quiet_opencv
from image_pipeline.cameras.status import HEARTBEAT_S, CameraHealth, StatusPublisher
from image_pipeline.config import Config, ConfigError
from image_pipeline.messages import CameraStatus
from image_pipeline.records.imagedb import camera_history
from image_pipeline.stages.publishing import Capture, Receiver

logger = logging.getLogger(__name__)
QUEUE_DEPTH = 64  # captures between the readers and the storer, all cameras together
NO_SEQ_LIMIT = 10**12


@dataclass(frozen=True)
class CameraRunOptions:
    """Command-line bounds and overrides of a camera run."""

    fps: float | None = None  # replaces every camera's fps (--fps)
    max_frames: int | None = None  # frames kept per camera (--frames)
    duration_s: float | None = None  # stop after this long (--duration)
    heartbeat_s: float = HEARTBEAT_S


def select_cameras(cfg: Config, camera_id: str | None, all_cameras: bool) -> tuple[CameraConfig, ...]:
    """The cameras to run: one by id (--camera), or every configured one (--cameras-from-config)."""
    if camera_id is not None:
        try:
            return (find_camera(cfg.cameras, camera_id),)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if all_cameras and not cfg.cameras:
        raise ConfigError("--cameras-from-config: config.yaml has no cameras: list")
    return cfg.cameras if all_cameras else ()


def next_seq(cfg: Config, camera_id: str) -> int:
    """The seq after the camera's last stored image, so a restarted receiver never overwrites one."""
    last = camera_history(cfg.images_dir, camera_id, NO_SEQ_LIMIT, 1)
    return last[-1].seq + 1 if last else 0


class CameraSet:
    """The reader threads of several cameras, feeding one queue of captures."""

    def __init__(self, cfg: Config, cameras: tuple[CameraConfig, ...], stop: threading.Event,
                 options: CameraRunOptions) -> None:
        self.stop = stop
        self.queue: queue.Queue[Capture] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.healths: list[CameraHealth] = []
        self.readers: list[CameraReader] = []
        limits = ReaderLimits(max_frames=options.max_frames)
        for camera in cameras:
            if options.fps is not None:
                camera = dataclasses.replace(camera, fps=options.fps)
            health = CameraHealth(camera)
            self.healths.append(health)
            self.readers.append(CameraReader(camera, cfg, health, self.emit, stop, next_seq(cfg, camera.id), limits))

    def start(self) -> None:
        """Start every reader."""
        for reader in self.readers:
            reader.thread.start()

    def emit(self, capture: Capture, block: bool) -> bool:
        """Queue a capture; without block, refuse it when the queue is full."""
        if not block:
            try:
                self.queue.put_nowait(capture)
                return True
            except queue.Full:
                return False
        while not self.stop.is_set():
            try:
                self.queue.put(capture, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def captures(self) -> Iterator[Capture]:
        """Captures as the readers make them, until every reader has finished or the run stops."""
        while True:
            try:
                yield self.queue.get(timeout=0.2)
            except queue.Empty:
                if self.stop.is_set() or not any(r.thread.is_alive() for r in self.readers):
                    return

    def join(self, timeout_s: float) -> None:
        """Wait for the readers; one stuck in a source call is left behind (its thread is a daemon)."""
        deadline = time.monotonic() + timeout_s
        for reader in self.readers:
            reader.thread.join(max(0.0, deadline - time.monotonic()))
            if reader.thread.is_alive():
                logger.warning("camera=%s reader still blocked in its source; leaving it", reader.camera.id)


def run_cameras(cfg: Config, cameras: tuple[CameraConfig, ...], stop: threading.Event,
                options: CameraRunOptions) -> int:
    """Read the cameras until stopped (or their files end); returns the exit code. A camera never fails it."""
    quiet_opencv()
    cameras_set = CameraSet(cfg, cameras, stop, options)
    receiver = Receiver(cfg, stop, fps=0)
    topic = cfg.topics.camera_status.name

    def send(status: CameraStatus) -> None:
        receiver.producer.send(topic, key=status.camera_id.encode("utf-8"), value=status.encode())

    publisher = StatusPublisher(cameras_set.healths, send, options.heartbeat_s)
    timer = _stop_after(stop, options.duration_s)
    logger.info("reading %d camera(s): %s; status on topic %s", len(cameras),
                ", ".join(f"{c.id}={c.source}" for c in cameras), topic)
    publisher.start()
    cameras_set.start()
    try:
        count = receiver.run(cameras_set.captures(), None, len(cameras))
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        cameras_set.join(max(c.read_timeout_s for c in cameras) + 1)
        for health in cameras_set.healths:
            if health.state != "ended":  # a deliberate stop is not an outage: no offline alert for it
                health.set_state("ended", "receiver stopped")
        publisher.stop()
        code = receiver.finish()
    for health in cameras_set.healths:
        logger.info("camera=%s state=%s read=%d kept=%d dropped=%d reconnects=%d", health.camera.id, health.state,
                    health.frames_read, health.frames_kept, health.frames_dropped, health.reconnects)
    logger.info("done: %d images from %d camera(s) stored in %s", count, len(cameras), cfg.images_dir)
    return code


def _stop_after(stop: threading.Event, duration_s: float | None) -> threading.Timer | None:
    if duration_s is None:
        return None
    timer = threading.Timer(duration_s, stop.set)
    timer.daemon = True
    timer.start()
    return timer
