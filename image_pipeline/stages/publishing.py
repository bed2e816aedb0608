"""The receiver's I/O side: stores captures in the image database and announces them on Kafka, in order.

Whatever makes the frames (the simulator, a folder, a camera's reader thread) hands Captures to
Receiver.run; this module knows nothing about where they came from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError

from image_pipeline.config import Config
from image_pipeline.errors import FatalError
from image_pipeline.kafka.clients import close_producer, make_producer
from image_pipeline.records.imagedb import ImageAnnouncer
from image_pipeline.records.inline import ImageTooLargeError

logger = logging.getLogger(__name__)
GROUND_TRUTH = "ground_truth.jsonl"


@dataclass
class Capture:
    """One image ready to store and announce."""

    camera_id: str
    seq: int
    data: bytes
    width: int
    height: int
    ext: str
    truth: list[dict[str, Any]] | None  # None: no ground truth (a --source file, a real camera)
    captured_at: float = field(default_factory=time.time)
    source: str = ""  # the image message's source; empty: synthetic with truth, else directory
    stamped: bool = False  # captured_at is final (a camera's grab time): Receiver.run keeps it


class DeliveryTracker:
    """Counts acknowledgements and failures of sends, and notices a Kafka outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.failed: list[str] = []
        self._pending: dict[str, float] = {}
        self._outage_since: float | None = None
        self._last_report = 0.0

    def track(self, image_id: str, future: Any) -> None:
        """Watch one send's future."""
        with self._lock:
            self.sent += 1
            self._pending[image_id] = time.monotonic()
        future.add_callback(lambda _meta: self._done(image_id, None))
        future.add_errback(lambda exc: self._done(image_id, exc))

    def _done(self, image_id: str, exc: BaseException | None) -> None:
        with self._lock:
            self._pending.pop(image_id, None)
            if exc is None:
                self.acked += 1
            else:
                self.failed.append(image_id)
                logger.error("image=%s never reached Kafka: %s (the file stays in the image database)", image_id, exc)

    def pending_ids(self) -> list[str]:
        """Images sent but neither acknowledged nor failed yet."""
        with self._lock:
            return sorted(self._pending)

    def check_outage(self, threshold_s: float = 3.0) -> None:
        """Log when sends wait unusually long (Kafka down) and when they flow again."""
        now = time.monotonic()
        with self._lock:
            oldest = min(self._pending.values(), default=None)
            waiting = len(self._pending)
        if oldest is not None and now - oldest > threshold_s:
            if self._outage_since is None:
                self._outage_since = oldest
            if now - self._last_report >= 5.0:
                logger.warning(
                    "Kafka is not acknowledging: %d image(s) waiting for %.0f s; retrying until the delivery timeout",
                    waiting, now - oldest,
                )
                self._last_report = now
        elif self._outage_since is not None and waiting == 0:
            logger.warning("Kafka acknowledges again after an outage of about %.1f s", now - self._outage_since)
            self._outage_since = None


class Receiver:
    """Stores and announces captures, paced to an fps, with ground truth on the side.

    Capturing (synthesis, JPEG encoding) runs on the calling thread; storing (write and fsync) and
    announcing run on one storer thread, in capture order. fsync waits on the disk without the GIL,
    so the next frames are made while the last ones become durable: a profile of the single-threaded
    receiver showed about a fifth of its time waiting in fsync.
    """

    QUEUE_DEPTH = 32  # captures waiting to be stored: bounds memory, absorbs a slow disk for a moment

    def __init__(self, cfg: Config, stop: threading.Event, fps: float) -> None:
        self.cfg = cfg
        self.stop = stop
        self.fps = fps
        self.producer = make_producer(cfg, "image-receiver")
        self.announcer = ImageAnnouncer(cfg, self.producer)
        self.tracker = DeliveryTracker()
        self.truth_path = cfg.images_dir / GROUND_TRUTH
        self._queue: queue.Queue[Capture | None] = queue.Queue(maxsize=self.QUEUE_DEPTH)
        self._error: BaseException | None = None
        self.refused = 0  # images too large for inline transport

    def run(self, captures: Iterator[Capture], total: int | None, cameras: int) -> int:
        """Publish every capture; returns how many were stored and announced."""
        began = time.monotonic()
        last_progress = began
        count = 0
        truth_file = self.truth_path.open("a", encoding="utf-8")
        storer = threading.Thread(target=self._store_loop, args=(truth_file,), name="image-storer", daemon=True)
        storer.start()
        try:
            for capture in captures:
                if self.stop.is_set() or self._error is not None:
                    logger.info("stop requested; stopping after %d images", count)
                    break
                self._pace(began, count // max(cameras, 1))
                if not capture.stamped:
                    # The camera "captures" the frame when its slot comes, not when it was drawn.
                    capture.captured_at = time.time()
                self._queue.put(capture)
                count += 1
                self.tracker.check_outage()
                if time.monotonic() - last_progress >= 2.0:
                    self._progress(count, total, began)
                    last_progress = time.monotonic()
        finally:
            # Whatever was captured is still stored and announced before we return.
            self._queue.put(None)
            storer.join()
            truth_file.close()
        if self._error is not None:
            raise self._error
        return count

    def _store_loop(self, truth_file: Any) -> None:
        """The storer thread: store and announce queued captures in order until the end marker."""
        while (capture := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the capturing thread never blocks on a full queue
            try:
                self._publish(capture, truth_file)
            except BaseException as exc:
                self._error = exc
                self.stop.set()

    def _pace(self, began: float, frame_index: int) -> None:
        if self.fps <= 0:
            return
        delay = began + frame_index / self.fps - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)

    def _publish(self, capture: Capture, truth_file: Any) -> None:
        try:
            message, future = self.announcer.store_and_announce(
                capture.camera_id, capture.seq, capture.data, capture.width, capture.height,
                source=capture.source or ("synthetic" if capture.truth is not None else "directory"),
                ext=capture.ext, captured_at=capture.captured_at,
            )
        except OSError as exc:
            raise FatalError(f"cannot store image of camera {capture.camera_id}: {exc}") from exc
        except ImageTooLargeError as exc:
            # One oversized frame must not stop the camera, nor vanish without a word.
            self.refused += 1
            logger.error("refused: %s", exc)
            return
        if capture.truth is not None:
            row = {"image_id": message.image_id, "camera_id": capture.camera_id,
                   "seq": capture.seq, "truth": capture.truth}
            truth_file.write(json.dumps(row, separators=(",", ":")) + "\n")
            truth_file.flush()
        self.tracker.track(message.image_id, future)
        logger.debug("announced image=%s camera=%s", message.image_id, message.camera_id)

    def _progress(self, count: int, total: int | None, began: float) -> None:
        rate = count / max(time.monotonic() - began, 1e-9)
        logger.info("stored and announced %d/%s images (%.1f img/s); acknowledged by Kafka: %d",
                    count, total if total is not None else "?", rate, self.tracker.acked)

    def finish(self) -> int:
        """Flush every pending send; exit code 1 if any image never reached Kafka."""
        deadline_s = self.cfg.kafka.delivery_timeout_ms / 1000 + 5
        began = time.monotonic()
        while self.tracker.acked + len(self.tracker.failed) < self.tracker.sent:
            if time.monotonic() - began > deadline_s:
                break
            # Not everything acknowledged yet: keep waiting until the delivery timeout.
            with contextlib.suppress(KafkaError):
                self.producer.flush(timeout=1.0)
            self.tracker.check_outage()
        close_producer(self.producer, timeout_s=5)
        unconfirmed = self.tracker.sent - self.tracker.acked
        if unconfirmed:
            examples = ", ".join((self.tracker.failed + self.tracker.pending_ids())[:3])
            logger.error("%d of %d image(s) did not reach Kafka (e.g. %s); they remain in %s",
                         unconfirmed, self.tracker.sent, examples, self.cfg.images_dir)
            return 1
        logger.info("all %d images acknowledged by Kafka", self.tracker.sent)
        if self.refused:
            logger.error("%d image(s) refused as too large for inline transport (see the errors above)", self.refused)
            return 1
        return 0
