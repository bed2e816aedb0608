"""The receiver: synthesizes camera images (or reads a folder), stores them, announces them on Kafka."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kafka.errors import KafkaError

from image_pipeline import cli
from image_pipeline.config import Config, ConfigError, parse_size
from image_pipeline.errors import FatalError
from image_pipeline.kafka.clients import close_producer, ensure_topics, make_producer
from image_pipeline.messages import UploadError
from image_pipeline.records.imagedb import ImageAnnouncer
from image_pipeline.sim.synthesis import camera_ids, load_backgrounds, synthesize_camera
from image_pipeline.storage import check_camera_id
from image_pipeline.vision.imaging import ImageError, decode, encode_jpeg, inspect

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
    truth: list[dict[str, Any]] | None  # None: no ground truth (a --source file)
    captured_at: float = field(default_factory=time.time)


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


def read_backgrounds(folder: Path) -> list[np.ndarray]:
    """The background photos, or a ConfigError that says what is wrong with the folder."""
    try:
        return load_backgrounds(folder)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ConfigError(f"--backgrounds: {exc}") from None


def synthesized(cameras: int, frames: int, seed: int, size: tuple[int, int],
                backgrounds: list[np.ndarray], quality: int, noise: float = 1.0) -> Iterator[Capture]:
    """Frames of every camera, interleaved in capture order."""
    streams = [synthesize_camera(cam, frames, seed, size, backgrounds, noise) for cam in camera_ids(cameras)]
    for _ in range(frames):
        for stream in streams:
            frame = next(stream)
            captured_at = time.time()
            data = encode_jpeg(frame.image, quality)
            height, width = frame.image.shape[:2]
            truth = [t.to_dict() for t in frame.truth]
            yield Capture(frame.camera_id, frame.seq, data, width, height, "jpg", truth, captured_at)


def from_folder(cfg: Config, folder: Path, camera_id: str, errors: list[tuple[Path, ImageError]]) -> Iterator[Capture]:
    """Existing .jpg/.png files of a folder, in name order; bad files are collected in errors."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file())
    if not files:
        raise ConfigError(f"--source {folder}: no .jpg or .png files found")
    for seq, path in enumerate(files):
        data = path.read_bytes()
        try:
            info = inspect(data, cfg.limits)
            decode(data, cfg.limits)
        except ImageError as exc:
            errors.append((path, exc))
            continue
        ext = "png" if info.format == "png" else "jpg"
        yield Capture(camera_id, seq, data, info.width, info.height, ext, None)


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

    def run(self, captures: Iterator[Capture], total: int, cameras: int) -> int:
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
                source="synthetic" if capture.truth is not None else "directory",
                ext=capture.ext, captured_at=capture.captured_at,
            )
        except OSError as exc:
            raise FatalError(f"cannot store image of camera {capture.camera_id}: {exc}") from exc
        if capture.truth is not None:
            row = {"image_id": message.image_id, "camera_id": capture.camera_id,
                   "seq": capture.seq, "truth": capture.truth}
            truth_file.write(json.dumps(row, separators=(",", ":")) + "\n")
            truth_file.flush()
        self.tracker.track(message.image_id, future)
        logger.debug("announced image=%s camera=%s", message.image_id, message.camera_id)

    def _progress(self, count: int, total: int, began: float) -> None:
        rate = count / max(time.monotonic() - began, 1e-9)
        logger.info("stored and announced %d/%d images (%.1f img/s); acknowledged by Kafka: %d",
                    count, total, rate, self.tracker.acked)

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
        return 0


def publish_refused(cfg: Config, errors: list[tuple[Path, ImageError]]) -> None:
    """Report refused --source files on the error topic, one record each."""
    if not errors:
        return
    producer = make_producer(cfg, "image-receiver-errors")
    for path, exc in errors:
        logger.error("refused %s: %s", path.name, exc)
        record = UploadError(status=400, error=str(exc), filename=path.name, camera_id="", size=path.stat().st_size)
        producer.send(cfg.topics.errors.name, value=record.encode())
    producer.flush()
    producer.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The receiver's options."""
    parser = cli.base_parser("image_receiving.py", "Synthesize camera images, store them and announce them on Kafka.")
    parser.add_argument("--cameras", type=int, default=None, help="number of cameras (default: config)")
    parser.add_argument("--frames", type=int, default=None, help="frames per camera (default: config)")
    parser.add_argument("--fps", type=float, default=None, help="frames per second per camera; 0 = as fast as possible")
    parser.add_argument("--seed", type=int, default=None, help="random seed: same seed, same images")
    parser.add_argument("--size", default=None, help="image size WxH (default 640x480)")
    parser.add_argument("--noise", type=float, default=1.0, help="sensor noise scale (default 1.0)")
    parser.add_argument("--backgrounds", default=None, help="folder of background photos (default image_original/)")
    parser.add_argument(
        "--prerender", action="store_true",
        help="draw every frame before sending any, so the camera simulation does not compete with the "
             "pipeline for CPU while it runs (used by the benchmark's latency runs)",
    )
    parser.add_argument("--source", default=None, help="publish the .jpg/.png files of this folder instead")
    parser.add_argument("--camera-id", default=None, help="camera id for --source images (default: folder name)")
    return parser.parse_args(argv)


def _camera_for_folder(folder: Path, given: str | None) -> str:
    name = given or re.sub(r"[^A-Za-z0-9_-]+", "-", folder.resolve().name).strip("-") or "source"
    try:
        return check_camera_id(name, "camera id")
    except ValueError as exc:
        raise ConfigError(f"--camera-id: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_receiving.py."""
    args = parse_args(argv)
    cli.setup_logging(args.log_level)
    return cli.run_main("image_receiving.py", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    cfg = cli.load_from_args(args)
    r = cfg.receiver
    cameras = r.cameras if args.cameras is None else args.cameras
    frames = r.frames if args.frames is None else args.frames
    fps = r.fps if args.fps is None else args.fps
    seed = r.seed if args.seed is None else args.seed
    size = parse_size(args.size or r.size, "--size")
    if cameras < 1 or frames < 1 or fps < 0 or not 0 <= args.noise <= 10:
        raise ConfigError("--cameras and --frames must be at least 1, --fps at least 0, --noise in 0..10")
    backgrounds = read_backgrounds(Path(args.backgrounds) if args.backgrounds else cfg.originals_dir)
    cli.ensure_data_dirs(cfg)
    stop = cli.stop_event_on_signals()
    ensure_topics(cfg)
    errors: list[tuple[Path, ImageError]] = []
    if args.source:
        folder = Path(args.source)
        if not folder.is_dir():
            raise ConfigError(f"--source {folder}: not a folder")
        camera_id = _camera_for_folder(folder, args.camera_id)
        captures = from_folder(cfg, folder, camera_id, errors)
        total, cameras = sum(1 for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")), 1
        logger.info("publishing the images of %s as camera %s to %s", folder, camera_id, cfg.kafka.bootstrap_servers)
    else:
        captures = synthesized(cameras, frames, seed, size, backgrounds, r.jpeg_quality, args.noise)
        total = cameras * frames
        logger.info("synthesizing %d camera(s) x %d frames at %dx%d, seed %d, %s, to %s (topic %s)",
                    cameras, frames, size[0], size[1], seed, f"{fps:g} fps" if fps else "as fast as possible",
                    cfg.kafka.bootstrap_servers, cfg.topics.images.name)
    if args.prerender and not args.source:
        drawing_began = time.monotonic()
        captures = iter(list(captures))
        logger.info("prerendered %d frames in %.1f s", total, time.monotonic() - drawing_began)
    receiver = Receiver(cfg, stop, fps)
    began = time.monotonic()
    try:
        count = receiver.run(captures, total, cameras)
    finally:
        code = receiver.finish()
    publish_refused(cfg, errors)
    elapsed = time.monotonic() - began
    logger.info("done: %d images stored in %s in %.1f s (%.1f img/s), %d acknowledged by Kafka%s",
                count, cfg.images_dir, elapsed, count / max(elapsed, 1e-9), receiver.tracker.acked,
                f"; {len(errors)} file(s) refused" if errors else "")
    return code
