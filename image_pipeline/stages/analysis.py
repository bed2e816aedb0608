"""The analyzer: per-camera detection, episodes, event records and event messages, as one pure step.

Per camera it keeps a detector (chosen by analysis.detector), an episode tracker, and the rendering of
each open episode's key frame. Each partition has a capture clock, the latest capture time seen on it:
a camera whose last frame is idle_close_s behind that clock has its episodes closed, and when the
whole partition is quiet the runner's verified idle time moves the clock on.
"""

from __future__ import annotations

import argparse
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from image_pipeline import cli
from image_pipeline.config import Config
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.kafka.runner import RunOptions, RunStats, run_stage
from image_pipeline.messages import EventMessage
from image_pipeline.records.events import KeyRendering, event_writes, render_key
from image_pipeline.records.imagedb import (
    StoredImage,
    camera_history,
    parse_announcement,
    read_announced,
    stored_capture_time,
)
from image_pipeline.stages.camera_monitor import start_monitor
from image_pipeline.stages.replay import KafkaHistory
from image_pipeline.stages.step import Outputs, Send, Source, StageSpec, StepBase
from image_pipeline.vision.detector import Detector, decode_width, detector_factory
from image_pipeline.vision.episodes import EpisodeParams, EpisodeTracker, EpisodeUpdate, FrameHit
from image_pipeline.vision.imaging import decode, decode_at_least
from image_pipeline.vision.masking import MotionMask
from image_pipeline.zones import areas_of

logger = logging.getLogger(__name__)
RECENT_HIT_FRAMES = 4  # a new episode's key frame can be one of its first hits, a frame or two back


@dataclass(frozen=True)
class Frame:
    """One camera frame: the analyzer's input, live or replayed.

    `image` is decoded only as large as the detector needs (a 1/4 JPEG decode of a 640x480 frame for
    the blocks detector); `data` keeps the stored file's bytes, decoded at full size only if the
    frame becomes an event's key frame.
    """

    camera_id: str
    image_id: str
    seq: int
    captured_at: float
    image: np.ndarray
    full_size: tuple[int, int]  # (width, height) of the camera frame
    data: bytes


@dataclass
class CameraState:
    """What the analyzer remembers about one camera."""

    detector: Detector
    tracker: EpisodeTracker
    partition: int | None
    last_seq: int = -1
    last_captured: float = 0.0
    # Hit frames that may yet become a key frame: image id, stored bytes, difference image.
    recent_hits: deque[tuple[str, bytes, np.ndarray | None]] = field(
        default_factory=lambda: deque(maxlen=RECENT_HIT_FRAMES))
    # By event id: the current key frame (type, hit, stored bytes, difference), rendered only when written.
    keys: dict[str, tuple[str, FrameHit, bytes, np.ndarray | None]] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)  # by event id: the key image id on disk


@dataclass
class AnalysisCounters:
    """Totals for progress lines and the final summary."""

    images: int = 0
    events_started: int = 0
    events_ended: int = 0
    detector_errors: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    first_at: float = 0.0  # wall clock of the first and last image analyzed, for the benchmark
    last_at: float = 0.0


class AnalysisStep(StepBase[Frame]):
    """Frames in, event files and event messages out; no Kafka, no disk."""

    def __init__(self, cfg: Config, make_detector: Callable[[], Detector] | None = None) -> None:
        self.cfg = cfg
        self.make_detector = make_detector or detector_factory(cfg.analysis.detector)
        self.params = EpisodeParams(update_every=cfg.analysis.update_every)
        self.cameras: dict[str, CameraState] = {}
        self.clocks: dict[int | None, float] = {}  # capture clock per partition
        self.counters = AnalysisCounters()
        self.masks: dict[str, MotionMask] = {}  # per camera, built on its first frame

    # -- the step

    def apply(self, item: Frame, source: Source | None) -> Outputs:
        """Detect on one frame, close idle episodes, advance this camera's episodes."""
        state = self.cameras[item.camera_id]
        out = self._advance_clock(state.partition, item.captured_at)
        detections = state.detector.process(self._masked(item), item.full_size)
        if detections:
            state.recent_hits.append((item.image_id, item.data, state.detector.difference_image()))
        updates = state.tracker.observe(item.image_id, item.seq, item.captured_at, detections)
        state.last_seq, state.last_captured = item.seq, item.captured_at
        self._remember_changed_keys(state)
        for update in updates:
            out.add(self._emit(update, state, item.captured_at))
        if source is not None:
            self._count_image()
        return out

    def _masked(self, item: Frame) -> np.ndarray:
        """The frame with its camera's motion mask painted out (areas: in config.yaml)."""
        mask = self.masks.get(item.camera_id)
        if mask is None:
            cam = areas_of(self.cfg.areas, item.camera_id)
            mask = self.masks[item.camera_id] = MotionMask(cam.mask if cam else ())
        return mask.paint(item.image, item.full_size)

    def needs_replay(self, item: Frame) -> bool:
        """State is missing (first frame, restart, rebalance) or stale (a redelivered frame)."""
        state = self.cameras.get(item.camera_id)
        return state is None or item.seq <= state.last_seq

    def start_replay(self, item: Frame, source: Source) -> None:
        """Fresh state for the camera, rebuilt next from its stored history."""
        self.cameras[item.camera_id] = self._fresh(item.camera_id, source.partition)

    def reset(self, item: Frame) -> Outputs:
        """The detector or tracker raised on this frame: close the camera's episodes, start it afresh."""
        camera_id = item.camera_id
        state = self.cameras.get(camera_id)
        self.counters.detector_errors += 1
        if state is None:
            return Outputs()
        try:
            return self._close_all(state, item.captured_at)
        finally:
            fresh = self._fresh(camera_id, state.partition)
            fresh.last_seq, fresh.last_captured = item.seq, item.captured_at
            self.cameras[camera_id] = fresh

    def idle(self, partition: int, idle_s: float) -> Outputs:
        """No record on this partition for idle_s verified seconds: move its capture clock on."""
        latest = max((s.last_captured for s in self.cameras.values() if s.partition == partition), default=None)
        if latest is None:
            return Outputs()
        return self._advance_clock(partition, latest + idle_s)

    def wants_idle_ticks(self) -> bool:
        """Only open episodes can need closing."""
        return any(s.tracker.has_open() for s in self.cameras.values())

    def revoke(self, partitions: set[int]) -> None:
        """Forget cameras of revoked partitions; whoever gets them warms up from the database."""
        for camera_id in [c for c, s in self.cameras.items() if s.partition in partitions]:
            del self.cameras[camera_id]
            logger.info("camera=%s moved to another analyzer; state dropped", camera_id)
        for partition in partitions:
            self.clocks.pop(partition, None)

    # -- the logic

    def _fresh(self, camera_id: str, partition: int | None) -> CameraState:
        return CameraState(self.make_detector(), EpisodeTracker(camera_id, self.params), partition)

    def _advance_clock(self, partition: int | None, captured_at: float) -> Outputs:
        """Move a partition's capture clock forward and close the episodes of cameras idle behind it."""
        clock = max(self.clocks.get(partition, captured_at), captured_at)
        self.clocks[partition] = clock
        out = Outputs()
        for state in self.cameras.values():
            idle = clock - state.last_captured >= self.cfg.analysis.idle_close_s
            if state.partition == partition and state.tracker.has_open() and idle:
                logger.info("camera=%s sent no frame for %.1f s; closing its episodes",
                            state.tracker.camera_id, clock - state.last_captured)
                out.add(self._close_all(state, state.last_captured))
        return out

    def _close_all(self, state: CameraState, captured_at: float) -> Outputs:
        out = Outputs()
        for update in state.tracker.finish():
            out.add(self._emit(update, state, captured_at))
        return out

    def _remember_changed_keys(self, state: CameraState) -> None:
        """Keep what each open episode's key frame needs for its derived images, when the key moves."""
        for event_id, (event_type, key) in state.tracker.open_key_frames().items():
            current = state.keys.get(event_id)
            if current is not None and current[1].image_id == key.image_id:
                continue
            hit = next((h for h in state.recent_hits if h[0] == key.image_id), None)
            if hit is not None:  # always: a key frame is a hit frame, and recent when it becomes the key
                state.keys[event_id] = (event_type, key, hit[1], hit[2])

    def _rendering(self, state: CameraState, event_id: str) -> KeyRendering | None:
        """The derived images of the episode's key frame, if they are not on disk yet (full decode here only)."""
        kept = state.keys.get(event_id)
        if kept is None or state.written.get(event_id) == kept[1].image_id:
            return None
        event_type, key, data, diff = kept
        full = decode(data, self.cfg.limits)
        return render_key(event_type, state.tracker.camera_id, key.image_id, key.score, key.boxes, full, diff,
                          areas_of(self.cfg.areas, state.tracker.camera_id))

    def _emit(self, update: EpisodeUpdate, state: CameraState, captured_at: float) -> Outputs:
        """The files and the event message of one episode step; derived images when the key frame moved."""
        episode = update.episode
        key_id = episode.frames[episode.key_index].image_id
        fresh = self._rendering(state, episode.event_id)
        record, writes = event_writes(self.cfg, episode, fresh)
        if fresh is not None:
            state.written[episode.event_id] = fresh.image_id
        if update.phase == "end":
            state.keys.pop(episode.event_id, None)
            state.written.pop(episode.event_id, None)
        event = EventMessage(
            phase=update.phase, event_id=episode.event_id, event_type=episode.event_type,
            camera_id=episode.camera_id, score=round(float(episode.score), 4),
            first_image_id=episode.frames[0].image_id, last_image_id=episode.frames[-1].image_id,
            key_image_id=key_id, frame_count=len(episode.frames),
            record_path=record["paths"]["record"], captured_at=captured_at,
        )
        self._count_event(update)
        logger.info("event %s %s camera=%s type=%s score=%.2f frames=%d", update.phase, episode.event_id,
                    episode.camera_id, episode.event_type, episode.score, len(episode.frames))
        return Outputs(writes, [Send(self.cfg.topics.events.name, episode.camera_id.encode(), event.encode())])

    def _count_image(self) -> None:
        self.counters.images += 1
        self.counters.last_at = time.time()
        self.counters.first_at = self.counters.first_at or self.counters.last_at

    def _count_event(self, update: EpisodeUpdate) -> None:
        if update.phase == "start":
            self.counters.events_started += 1
            kind = update.episode.event_type
            self.counters.by_type[kind] = self.counters.by_type.get(kind, 0) + 1
        elif update.phase == "end":
            self.counters.events_ended += 1


# -- the stage's I/O side: decoding records and loading history, used by the runner


def frame_decoder(cfg: Config) -> Callable[[bytes | None], Frame]:
    """Parse an image announcement and load its pixels from the image database."""
    width = decode_width(cfg.analysis.detector)

    def decode_record(value: bytes | None) -> Frame:
        announced = parse_announcement(cfg, value)
        message = announced.message
        data = read_announced(announced)
        image, info = decode_at_least(data, cfg.limits, width)
        return Frame(message.camera_id, message.image_id, message.seq, message.captured_at, image,
                     (info.width, info.height), data)
    return decode_record


def frame_history(cfg: Config) -> Callable[[Frame], Iterator[Callable[[], Frame]]]:
    """The camera's stored frames before this one (up to analysis.warmup_frames), each as a loader."""
    def history(item: Frame) -> Iterator[Callable[[], Frame]]:
        for stored in camera_history(cfg.images_dir, item.camera_id, item.seq, cfg.analysis.warmup_frames):
            yield functools.partial(_stored_frame, cfg, item.camera_id, stored)
    return history


def _stored_frame(cfg: Config, camera_id: str, stored: StoredImage) -> Frame:
    """A stored image as the frame its announcement would have given."""
    data = stored.path.read_bytes()
    image, info = decode_at_least(data, cfg.limits, decode_width(cfg.analysis.detector))
    return Frame(camera_id, stored.image_id, stored.seq, stored_capture_time(stored.path), image,
                 (info.width, info.height), data)


def analysis_spec(cfg: Config, step: AnalysisStep) -> StageSpec[Frame]:
    """The analyzer as the runner sees it."""
    decode = frame_decoder(cfg)
    # Inline transport: the warm-up reads the camera's earlier messages, not the receiver's disk.
    history = (KafkaHistory(cfg, decode, lambda f: (f.camera_id, f.seq, f.captured_at))
               if cfg.transport == "inline" else frame_history(cfg))
    return StageSpec("image-analysis", cfg.groups.analyzer, cfg.topics.images.name, decode, step, history)


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_analysis.py."""
    return cli.consumer_main("image_analysis.py", "Detect events in announced images with OpenCV.", argv, run)


def run(cfg: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Consume the images topic until stopped; returns the exit code."""
    cli.ensure_data_dirs(cfg)
    stop = stop or cli.stop_event_on_signals()
    ensure_topics(cfg)
    logger.info("analyzing topic %s as group %s on %s with the %s detector; events to %s",
                cfg.topics.images.name, cfg.groups.analyzer, cfg.kafka.bootstrap_servers,
                cfg.analysis.detector, cfg.events_dir)
    step = AnalysisStep(cfg)
    options = RunOptions(until_idle=args.until_idle, max_messages=args.max_messages)
    # Offline cameras become events beside the frames' (stages/camera_monitor.py says why there).
    monitor_stop = threading.Event()
    monitor = start_monitor(cfg, monitor_stop)
    try:
        run_stage(cfg, analysis_spec(cfg, step), stop, options, lambda stats: _progress(step, stats))
    finally:
        monitor_stop.set()
        monitor.join(timeout=30)
    return 0


def _progress(step: AnalysisStep, stats: RunStats) -> None:
    c = step.counters
    types = ", ".join(f"{k}={v}" for k, v in sorted(c.by_type.items())) or "none"
    logger.info("analyzed %d images; events started %d (%s), ended %d; dead-lettered %d; first_at=%.3f last_at=%.3f",
                c.images, c.events_started, types, c.events_ended, stats.dead_lettered, c.first_at, c.last_at)
