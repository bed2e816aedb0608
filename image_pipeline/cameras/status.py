"""Each camera's health (state, counters, last frame), and the thread that publishes it on camera-status.

A reader thread writes its camera's CameraHealth; the publisher reads every health, sends a status
message on each change of state and every few seconds besides (a heartbeat: a monitor that hears
nothing for long knows the receiver itself is gone), and acts as the watchdog: a source call blocked
far beyond its read timeout marks the camera offline even while its thread is still stuck in it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.messages import CameraStatus

logger = logging.getLogger(__name__)
HEARTBEAT_S = 5.0
WATCHDOG_GRACE_S = 5.0  # beyond read_timeout_s: FFmpeg's own timeout should have fired by then


class CameraHealth:
    """One camera's state and counters; thread-safe (its reader writes, the publisher reads)."""

    def __init__(self, camera: CameraConfig, clock: Callable[[], float] = time.time) -> None:
        self.camera = camera
        self.clock = clock
        self._lock = threading.Lock()
        self.state = "connecting"
        self.since = clock()
        self.reason = ""
        self.frames_read = self.frames_kept = self.frames_dropped = self.reconnects = 0
        self.last_frame_at: float | None = None
        self.last_image_id: str | None = None
        self._busy_since: float | None = None  # monotonic start of a source call in progress
        self._changed = True

    def set_state(self, state: str, reason: str = "") -> bool:
        """Enter a state; returns whether it is a change (the caller logs changes only)."""
        with self._lock:
            if state == self.state:
                self.reason = reason or self.reason
                return False
            self.state, self.since, self.reason, self._changed = state, self.clock(), reason, True
            return True

    def count_read(self) -> None:
        """A frame came from the source."""
        with self._lock:
            self.frames_read += 1

    def count_kept(self, image_id: str, grabbed_at: float) -> None:
        """A frame was handed on to be stored and announced."""
        with self._lock:
            self.frames_kept += 1
            self.last_frame_at, self.last_image_id = grabbed_at, image_id

    def count_dropped(self) -> None:
        """A frame was skipped by the sampling or because the receiver was behind."""
        with self._lock:
            self.frames_dropped += 1

    def count_reconnect(self) -> None:
        """A new connection attempt after a loss."""
        with self._lock:
            self.reconnects += 1

    def enter_call(self) -> None:
        """A source call that may block (open, read) starts."""
        self._busy_since = time.monotonic()

    def leave_call(self) -> None:
        """That call returned."""
        self._busy_since = None

    def blocked_for(self) -> float:
        """Seconds the current source call has been blocked (0 when none runs)."""
        busy = self._busy_since
        return 0.0 if busy is None else time.monotonic() - busy

    def take_changed(self) -> bool:
        """Whether the state changed since the last call."""
        with self._lock:
            changed, self._changed = self._changed, False
            return changed

    def snapshot(self) -> CameraStatus:
        """The camera-status message for this moment."""
        with self._lock:
            return CameraStatus(
                camera_id=self.camera.id, state=self.state, since=round(self.since, 3),
                source_kind=self.camera.kind.value, frames_read=self.frames_read, frames_kept=self.frames_kept,
                frames_dropped=self.frames_dropped, reconnects=self.reconnects,
                last_frame_at=None if self.last_frame_at is None else round(self.last_frame_at, 3),
                last_image_id=self.last_image_id, offline_after_s=self.camera.offline_after_s,
                reason=self.reason[:1024], reported_at=round(self.clock(), 3),
            )


class StatusPublisher:
    """Publishes every camera's status on changes and heartbeats; marks cameras whose reads hang offline."""

    TICK_S = 0.25

    def __init__(self, healths: list[CameraHealth], send: Callable[[CameraStatus], None],
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.healths = healths
        self.send = send
        self.heartbeat_s = heartbeat_s
        self._last_sent: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="camera-status", daemon=True)

    def start(self) -> None:
        """Start publishing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Publish each camera's final status once more, then stop."""
        self._stop.set()
        self._thread.join(timeout=10)
        for health in self.healths:
            self.send(health.snapshot())

    def _loop(self) -> None:
        while not self._stop.wait(self.TICK_S):
            self.tick()

    def tick(self) -> None:
        """One round: the watchdog, then changed or due statuses."""
        now = time.monotonic()
        for health in self.healths:
            self._watch(health)
            due = now - self._last_sent.get(health.camera.id, -1e9) >= self.heartbeat_s
            if health.take_changed() or due:
                self.send(health.snapshot())
                self._last_sent[health.camera.id] = now

    def _watch(self, health: CameraHealth) -> None:
        blocked = health.blocked_for()
        if blocked > health.camera.read_timeout_s + WATCHDOG_GRACE_S and health.state != "offline":
            reason = f"no frame for {blocked:.0f} s: the source call is stuck (watchdog)"
            if health.set_state("offline", reason):
                logger.warning("camera=%s offline: %s", health.camera.id, reason)
