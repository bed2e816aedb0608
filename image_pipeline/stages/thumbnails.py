"""Thumbnails consumer: its own group on the images topic writes a grayscale copy and a thumbnail per image.

It shows Kafka fan-out: the analyzer's group and this group each read every image announcement.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from image_pipeline.cli import consumer_main, ensure_data_dirs, stop_event_on_signals
from image_pipeline.config import Config
from image_pipeline.kafka.runner import RunOptions, RunStats, run_stage
from image_pipeline.messages import ImageMessage
from image_pipeline.records.imagedb import load_image, parse_announcement
from image_pipeline.stages.step import FileWrite, Outputs, Source, StageSpec, StepBase
from image_pipeline.vision.imaging import encode_jpeg

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


@dataclass(frozen=True)
class Original:
    """An announced image with its decoded pixels: the thumbnail step's input."""

    message: ImageMessage
    path: Path
    image: np.ndarray


class ThumbnailStep(StepBase[Original]):
    """Derives a grayscale copy and a thumbnail of each image; no Kafka, no disk."""

    def __init__(self) -> None:
        self.written = 0

    def apply(self, item: Original, source: Source | None) -> Outputs:
        """The two derived files, next to the original."""
        derived = derive(item.image)
        gray_path, thumb_path = derived_paths(item.path)
        self.written += 1
        return Outputs([FileWrite(gray_path, derived.gray), FileWrite(thumb_path, derived.thumb)])


def original_decoder(cfg: Config) -> Callable[[bytes | None], Original]:
    """Parse an image announcement and load the original from the image database."""
    def decode_record(value: bytes | None) -> Original:
        announced = parse_announcement(cfg, value)
        return Original(announced.message, announced.path, load_image(cfg, announced))
    return decode_record


def run(cfg: Config, stop: threading.Event, options: RunOptions) -> RunStats:
    """Consume the images topic in the thumbnails group until stopped or idle."""
    ensure_data_dirs(cfg)
    step = ThumbnailStep()
    started = time.monotonic()

    def progress(stats: RunStats) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        logger.info(
            "progress processed=%d derived=%d dead_lettered=%d rate=%.1f/s",
            stats.processed, step.written, stats.dead_lettered, stats.processed / elapsed,
        )

    logger.info(
        "thumbnails consumer started topic=%s group=%s data=%s kafka=%s",
        cfg.topics.images.name, cfg.groups.thumbnails, cfg.data_dir, cfg.kafka.bootstrap_servers,
    )
    spec = StageSpec(CLIENT, cfg.groups.thumbnails, cfg.topics.images.name, original_decoder(cfg), step)
    stats = run_stage(cfg, spec, stop, options, progress)
    logger.info("thumbnails consumer stopped")
    return stats


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_thumbnails.py: python image_thumbnails.py [--until-idle S] [--max-messages N]."""
    return consumer_main("image_thumbnails.py", "Write a grayscale copy and a thumbnail of every announced image.",
                         argv, _run_from_args)


def _run_from_args(cfg: Config, args: argparse.Namespace) -> int:
    run(cfg, stop_event_on_signals(), RunOptions(until_idle=args.until_idle, max_messages=args.max_messages))
    return 0
