"""The analyzer: per-camera OpenCV detection, episodes, event records and event messages."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kafka import KafkaProducer
from kafka.structs import TopicPartition

from image_pipeline import cli
from image_pipeline.config import Config
from image_pipeline.errors import BadInputError, FatalError
from image_pipeline.kafka.clients import (
    LoopOptions,
    LoopStats,
    ensure_topics,
    run_consumer_stage,
)
from image_pipeline.messages import EventMessage, ImageMessage
from image_pipeline.records.events import EventWriter
from image_pipeline.records.imagedb import camera_history, stored_capture_time
from image_pipeline.storage import safe_join
from image_pipeline.vision.detection import CameraDetector
from image_pipeline.vision.episodes import EpisodeTracker, EpisodeUpdate
from image_pipeline.vision.imaging import decode

logger = logging.getLogger(__name__)


@dataclass
class CameraState:
    """What the analyzer remembers about one camera."""

    detector: CameraDetector
    tracker: EpisodeTracker
    partition: TopicPartition | None
    last_seq: int = -1
    previous_image_id: str | None = None
    warmed_frames: int = 0


@dataclass
class AnalysisCounters:
    """Totals for progress lines and the final summary."""

    images: int = 0
    events_started: int = 0
    events_ended: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    first_at: float = 0.0  # wall clock of the first and last image analyzed, for the benchmark
    last_at: float = 0.0


def read_image(cfg: Config, message: ImageMessage) -> np.ndarray:
    """Load and decode an announced image; bad paths and bad files raise BadInputError."""
    path = safe_join(cfg.images_dir, message.path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise BadInputError(f"image file is missing: {message.path}") from None
    except OSError as exc:
        raise FatalError(f"cannot read {path}: {exc}") from exc
    return decode(data, cfg.limits)


class Analyzer:
    """Turns image messages into events: the pure logic plus the writes, no polling."""

    def __init__(self, cfg: Config, producer: KafkaProducer) -> None:
        self.cfg = cfg
        self.producer = producer
        self.writer = EventWriter(cfg)
        self.cameras: dict[str, CameraState] = {}
        self.counters = AnalysisCounters()

    # -- the RecordHandler protocol of ConsumerLoop

    def handle(self, record: Any) -> None:
        """Analyze one image message."""
        message = ImageMessage.decode(record.value)
        tp = TopicPartition(record.topic, record.partition)
        self.analyze(message, read_image(self.cfg, message), tp)

    def flush(self) -> None:
        """Wait until every event message is acknowledged."""
        self.producer.flush()

    def partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        """Forget cameras of revoked partitions; whoever gets them warms up from the database."""
        gone = set(partitions)
        for camera_id in [c for c, s in self.cameras.items() if s.partition in gone]:
            del self.cameras[camera_id]
            logger.info("camera=%s moved to another analyzer; state dropped", camera_id)

    # -- the logic

    def analyze(
        self, message: ImageMessage, image: np.ndarray, tp: TopicPartition | None = None
    ) -> list[EpisodeUpdate]:
        """Detect on one decoded frame, advance its camera's episodes, write and publish updates."""
        state = self._state_for(message, tp)
        detections = state.detector.process(image)
        updates = state.tracker.observe(message.image_id, message.seq, message.captured_at, detections)
        state.last_seq = message.seq
        state.previous_image_id = message.image_id
        for update in updates:
            self._emit(update, message, image, state)
        self.counters.images += 1
        self.counters.last_at = time.time()
        if not self.counters.first_at:
            self.counters.first_at = self.counters.last_at
        return updates

    def _state_for(self, message: ImageMessage, tp: TopicPartition | None) -> CameraState:
        state = self.cameras.get(message.camera_id)
        if state is not None and message.seq > state.last_seq:
            return state
        if state is not None:
            # A replayed frame (redelivery): rebuild from the database so outputs repeat exactly.
            logger.info("camera=%s seq=%d replayed after seq=%d; rebuilding state",
                        message.camera_id, message.seq, state.last_seq)
        state = self._warm_up(message, tp)
        self.cameras[message.camera_id] = state
        return state

    def _warm_up(self, message: ImageMessage, tp: TopicPartition | None) -> CameraState:
        """Rebuild a camera's state by replaying its stored history before this frame."""
        state = CameraState(CameraDetector(), EpisodeTracker(message.camera_id), tp)
        history = camera_history(self.cfg.images_dir, message.camera_id, message.seq, self.cfg.analysis.warmup_frames)
        for stored in history:
            try:
                frame = decode(stored.path.read_bytes(), self.cfg.limits)
            except (BadInputError, OSError):
                continue  # it was dead-lettered the first time too, so skipping it repeats that run
            detections = state.detector.process(frame)
            state.tracker.observe(stored.image_id, stored.seq, stored_capture_time(stored.path), detections)
            state.last_seq = stored.seq
            state.previous_image_id = stored.image_id
            state.warmed_frames += 1
        if history:
            logger.info("camera=%s warmed up on %d stored frame(s) before seq=%d",
                        message.camera_id, state.warmed_frames, message.seq)
        return state

    def _emit(self, update: EpisodeUpdate, message: ImageMessage, image: np.ndarray, state: CameraState) -> None:
        episode = update.episode
        key_is_current = episode.frames[episode.key_index].image_id == message.image_id
        diff = state.detector.last_difference if key_is_current else None
        paths = self.writer.write(episode, image if key_is_current else None, diff)
        event = EventMessage(
            phase=update.phase, event_id=episode.event_id, event_type=episode.event_type,
            camera_id=episode.camera_id, score=round(float(episode.score), 4),
            first_image_id=episode.frames[0].image_id, last_image_id=episode.frames[-1].image_id,
            key_image_id=episode.frames[episode.key_index].image_id, frame_count=len(episode.frames),
            record_path=paths["record"], captured_at=message.captured_at,
        )
        self.producer.send(self.cfg.topics.events.name, key=episode.camera_id.encode(), value=event.encode())
        self._count(update)
        logger.info("event %s %s camera=%s type=%s score=%.2f frames=%d",
                    update.phase, episode.event_id, episode.camera_id, episode.event_type,
                    episode.score, len(episode.frames))

    def _count(self, update: EpisodeUpdate) -> None:
        if update.phase == "start":
            self.counters.events_started += 1
            kind = update.episode.event_type
            self.counters.by_type[kind] = self.counters.by_type.get(kind, 0) + 1
        elif update.phase == "end":
            self.counters.events_ended += 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The analyzer's options."""
    parser = cli.base_parser("image_analysis.py", "Detect events in announced images with OpenCV.")
    cli.add_loop_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_analysis.py."""
    args = parse_args(argv)
    cli.setup_logging(args.log_level)
    return cli.run_main("image_analysis.py", lambda: run(cli.load_from_args(args), args))


def run(cfg: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Consume the images topic until stopped; returns the exit code."""
    cli.ensure_data_dirs(cfg)
    stop = stop or cli.stop_event_on_signals()
    ensure_topics(cfg)
    logger.info("analyzing topic %s as group %s on %s; events to %s",
                cfg.topics.images.name, cfg.groups.analyzer, cfg.kafka.bootstrap_servers, cfg.events_dir)
    run_consumer_stage(
        cfg, "image-analysis", cfg.groups.analyzer, cfg.topics.images.name,
        lambda producer: Analyzer(cfg, producer), stop,
        LoopOptions(until_idle=args.until_idle, max_messages=args.max_messages),
        _progress,
    )
    return 0


def _progress(analyzer: Analyzer, stats: LoopStats) -> None:
    c = analyzer.counters
    types = ", ".join(f"{k}={v}" for k, v in sorted(c.by_type.items())) or "none"
    logger.info("analyzed %d images; events started %d (%s), ended %d; dead-lettered %d; first_at=%.3f last_at=%.3f",
                c.images, c.events_started, types, c.events_ended, stats.dead_lettered, c.first_at, c.last_at)

