"""Thumbnails consumer: its own group on the images topic writes a grayscale copy and a thumbnail per image.

It shows Kafka fan-out: the analyzer's group and this group each read every image announcement.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from kafka.structs import TopicPartition

from image_pipeline.cli import (
    add_loop_options,
    base_parser,
    ensure_data_dirs,
    load_from_args,
    run_main,
    setup_logging,
    stop_event_on_signals,
)
from image_pipeline.config import Config
from image_pipeline.errors import BadInputError, FatalError
from image_pipeline.kafka.clients import LoopOptions, LoopStats, run_consumer_stage
from image_pipeline.messages import ImageMessage
from image_pipeline.storage import atomic_write_bytes, safe_join
from image_pipeline.vision.imaging import decode, encode_jpeg

logger = logging.getLogger(__name__)

CLIENT = "image-thumbnails"
THUMB_WIDTH = 160
GRAY_SUFFIX = ".gray.jpg"
THUMB_SUFFIX = ".thumb.jpg"


@dataclass(frozen=True)
class Derived:
    """The two derived images of one original, as JPEG bytes."""

    gray: bytes
    thumb: bytes


def derive(image: np.ndarray, thumb_width: int = THUMB_WIDTH, quality: int = 85) -> Derived:
    """A grayscale copy at full size and a colour thumbnail `thumb_width` pixels wide."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height, width = image.shape[:2]
    new_width = min(thumb_width, width)
    new_height = max(1, round(height * new_width / width))
    thumb = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    return Derived(gray=encode_jpeg(gray, quality), thumb=encode_jpeg(thumb, quality))


def derived_paths(original: Path) -> tuple[Path, Path]:
    """Where the grayscale copy and the thumbnail of an original go: next to it, with a suffix."""
    stem = original.name.rsplit(".", 1)[0]
    return original.with_name(stem + GRAY_SUFFIX), original.with_name(stem + THUMB_SUFFIX)


class ThumbnailHandler:
    """Decodes one image announcement and writes its derived images atomically."""

    def __init__(self, cfg: Config, fsync: bool = True) -> None:
        self.cfg = cfg
        self.fsync = fsync
        self.written = 0

    def handle(self, record: Any) -> None:
        """Process one images-topic record; bad input raises BadInputError (→ dead letter)."""
        message = ImageMessage.decode(record.value)
        original = safe_join(self.cfg.images_dir, message.path)
        try:
            data = original.read_bytes()
        except FileNotFoundError:
            raise BadInputError(f"announced image is missing from the image database: {message.path}") from None
        except IsADirectoryError:
            raise BadInputError(f"announced path is a folder: {message.path}") from None
        except OSError as exc:
            raise FatalError(f"cannot read {message.path}: {exc}") from exc
        derived = derive(decode(data, self.cfg.limits))
        gray_path, thumb_path = derived_paths(original)
        try:
            atomic_write_bytes(gray_path, derived.gray, fsync=self.fsync)
            atomic_write_bytes(thumb_path, derived.thumb, fsync=self.fsync)
        except OSError as exc:
            raise FatalError(f"cannot write derived images of {message.image_id}: {exc}") from exc
        self.written += 1
        logger.debug(
            "derived image=%s camera=%s partition=%s offset=%s",
            message.image_id, message.camera_id, record.partition, record.offset,
        )

    def flush(self) -> None:
        """Nothing to flush: every write is atomic and fsynced before handle() returns."""

    def partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        """No per-partition state to forget."""


def run(cfg: Config, stop: Any, options: LoopOptions) -> LoopStats:
    """Consume the images topic in the thumbnails group until stopped or idle."""
    ensure_data_dirs(cfg)
    handler = ThumbnailHandler(cfg)
    started = time.monotonic()

    def progress(stats: LoopStats) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        logger.info(
            "progress processed=%d derived=%d dead_lettered=%d rate=%.1f/s",
            stats.processed, handler.written, stats.dead_lettered, stats.processed / elapsed,
        )

    logger.info(
        "thumbnails consumer started topic=%s group=%s data=%s kafka=%s",
        cfg.topics.images.name, cfg.groups.thumbnails, cfg.data_dir, cfg.kafka.bootstrap_servers,
    )
    stats = run_consumer_stage(
        cfg, CLIENT, cfg.groups.thumbnails, cfg.topics.images.name, lambda _producer: handler, stop, options,
        lambda _handler, stats: progress(stats),
    )
    logger.info("thumbnails consumer stopped")
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command line: python image_thumbnails.py [--until-idle S] [--max-messages N]."""
    parser = base_parser("image_thumbnails.py", "Write a grayscale copy and a thumbnail of every announced image.")
    add_loop_options(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        setup_logging(args.log_level)
        cfg = load_from_args(args)
        stop = stop_event_on_signals()
        run(cfg, stop, LoopOptions(until_idle=args.until_idle, max_messages=args.max_messages))
        return 0

    return run_main("image_thumbnails.py", body)
