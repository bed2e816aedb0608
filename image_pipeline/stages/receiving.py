"""The receiver: synthesizes camera images (or reads a folder), stores them, announces them on Kafka."""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from image_pipeline import cli
from image_pipeline.config import Config, ConfigError, parse_size
from image_pipeline.kafka.clients import ensure_topics, make_producer
from image_pipeline.messages import UploadError
from image_pipeline.sim.synthesis import camera_ids, load_backgrounds, synthesize_camera
from image_pipeline.stages.publishing import Capture, Receiver
from image_pipeline.stages.spool import spool
from image_pipeline.storage import check_camera_id
from image_pipeline.vision.imaging import ImageError, decode, encode_jpeg, inspect

logger = logging.getLogger(__name__)


def read_backgrounds(folder: Path) -> list[np.ndarray]:
    """The background photos, or a ConfigError that says what is wrong with the folder."""
    try:
        return load_backgrounds(folder)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ConfigError(f"--backgrounds: {exc}") from None


def synthesized(cameras: int, frames: int, seed: int, size: tuple[int, int],
                backgrounds: list[np.ndarray], quality: int, noise: float = 1.0) -> Iterator[Capture]:
    """Frames of every camera, interleaved in capture order."""
    streams = [camera_captures(cam, frames, seed, size, backgrounds, quality, noise) for cam in camera_ids(cameras)]
    for _ in range(frames):
        for stream in streams:
            yield next(stream)


def prerendered(cameras: int, frames: int, seed: int, size: tuple[int, int],
                backgrounds: list[np.ndarray], quality: int, noise: float = 1.0) -> Iterator[Capture]:
    """The same frames as synthesized(), all drawn first, one camera at a time, and spooled to disk.

    A camera's simulator holds ~17 MB at 640x480; drawing cameras one after another keeps one alive.
    """
    spools = [spool(camera_captures(cam, frames, seed, size, backgrounds, quality, noise))
              for cam in camera_ids(cameras)]
    for _ in range(frames):
        for stream in spools:
            yield next(stream)


def camera_captures(camera_id: str, frames: int, seed: int, size: tuple[int, int],
                    backgrounds: list[np.ndarray], quality: int, noise: float) -> Iterator[Capture]:
    """One synthetic camera's frames as JPEG captures with their ground truth."""
    for frame in synthesize_camera(camera_id, frames, seed, size, backgrounds, noise):
        height, width = frame.image.shape[:2]
        truth = [t.to_dict() for t in frame.truth]
        yield Capture(frame.camera_id, frame.seq, encode_jpeg(frame.image, quality), width, height, "jpg", truth,
                      time.time())


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
    parser.add_argument("--camera", default=None, metavar="ID", help="read this camera of config.yaml's cameras:")
    parser.add_argument("--cameras-from-config", action="store_true",
                        help="read every camera of config.yaml's cameras:, one thread each")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="with --camera(s): stop after this long (default: until Ctrl-C or the files end)")
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
    if args.camera is not None or args.cameras_from_config:
        return _main_cameras(cfg, args)
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
        draw = prerendered if args.prerender else synthesized
        drawing_began = time.monotonic()
        captures = draw(cameras, frames, seed, size, backgrounds, r.jpeg_quality, args.noise)
        total = cameras * frames
        logger.info("synthesizing %d camera(s) x %d frames at %dx%d, seed %d, %s, to %s (topic %s)",
                    cameras, frames, size[0], size[1], seed, f"{fps:g} fps" if fps else "as fast as possible",
                    cfg.kafka.bootstrap_servers, cfg.topics.images.name)
    if args.prerender and not args.source:
        # prerendered() draws lazily on first use; draw now, so drawing does not overlap the sending.
        first = next(captures)
        captures = itertools.chain([first], captures)
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


def _main_cameras(cfg: Config, args: argparse.Namespace) -> int:
    """--camera ID / --cameras-from-config: real cameras (cameras/), with --fps, --frames, --duration."""
    from image_pipeline.cameras.run import CameraRunOptions, run_cameras, select_cameras  # needs OpenCV's video I/O

    cameras = select_cameras(cfg, args.camera, args.cameras_from_config)
    if (args.fps is not None and args.fps < 0) or (args.frames is not None and args.frames < 1) \
            or (args.duration is not None and args.duration <= 0):
        raise ConfigError("--fps must be at least 0, --frames at least 1, --duration above 0")
    cli.ensure_data_dirs(cfg)
    stop = cli.stop_event_on_signals()
    ensure_topics(cfg)
    options = CameraRunOptions(fps=args.fps, max_frames=args.frames, duration_s=args.duration)
    return run_cameras(cfg, cameras, stop, options)
