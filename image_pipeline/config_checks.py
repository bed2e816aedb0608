"""Range and consistency checks of a loaded config: every bad value is one ConfigError line naming its key."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import TYPE_CHECKING

from image_pipeline.cameras.settings import validate_cameras
from image_pipeline.delivery.settings import SettingsError, check_delivery
from image_pipeline.errors import ConfigError
from image_pipeline.message_checks import MAX_SIDE
from image_pipeline.model import DETECTOR_NAMES, EVENT_TYPES
from image_pipeline.storage import MAX_CAMERA_ID_LEN, UnsafePathError, brief_repr, check_camera_id, check_id
from image_pipeline.zones import check_areas, zone_names

if TYPE_CHECKING:  # config.py imports this module; the types are for hints only
    from image_pipeline.config import Config, PathsConfig, Subscription, TopicConfig

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
_INT32_MAX = 2**31 - 1  # Kafka's timeouts and sizes are Java ints


def _ranges(cfg: Config) -> dict[str, tuple[float, float, float]]:
    """Every bounded number by key: (value, lowest allowed, highest allowed)."""
    k, r, a, lim, w = cfg.kafka, cfg.receiver, cfg.analysis, cfg.limits, cfg.web
    return {
        "kafka.delivery_timeout_ms": (k.delivery_timeout_ms, 1, _INT32_MAX),
        "kafka.request_timeout_ms": (k.request_timeout_ms, 1, _INT32_MAX),
        "kafka.max_poll_interval_ms": (k.max_poll_interval_ms, 1, _INT32_MAX),
        "kafka.session_timeout_ms": (k.session_timeout_ms, 1, _INT32_MAX),
        "kafka.replication_factor": (k.replication_factor, 1, 32_767),
        "kafka.min_insync_replicas": (k.min_insync_replicas, 1, k.replication_factor),
        "receiver.cameras": (r.cameras, 1, 10_000),
        "receiver.frames": (r.frames, 1, 10**9),
        "receiver.fps": (r.fps, 0, 1000),  # 0: as fast as possible
        "receiver.seed": (r.seed, -(2**63), 2**63 - 1),
        "receiver.jpeg_quality": (r.jpeg_quality, 1, 100),
        "analysis.warmup_frames": (a.warmup_frames, 1, 1_000_000),
        "analysis.update_every": (a.update_every, 1, 1_000_000),
        "analysis.idle_close_s": (a.idle_close_s, 0.001, 86_400),
        "limits.max_image_bytes": (lim.max_image_bytes, 1, _INT32_MAX),
        # Sides beyond MAX_SIDE would give image messages that consumers refuse.
        "limits.max_pixels": (lim.max_pixels, 1, MAX_SIDE**2),
        "limits.max_side": (lim.max_side, 1, MAX_SIDE),
        "web.port": (w.port, 1, 65_535),
        "web.max_upload_bytes": (w.max_upload_bytes, 1, _INT32_MAX),
        "web.recent_messages": (w.recent_messages, 1, 10_000),
    }


def _check_ranges(cfg: Config) -> None:
    """Refuse a number outside its key's range, naming the key."""
    for key, (value, low, high) in _ranges(cfg).items():
        if value < low:
            raise ConfigError(f"{key}: must be at least {low:,}, got {brief_repr(value)}")
        if value > high:
            raise ConfigError(f"{key}: must be at most {high:,}, got {brief_repr(value)}")


def _check_names(cfg: Config) -> None:
    """Topic names, partition counts, group ids and the Kafka address."""
    if not cfg.kafka.bootstrap_servers.strip():
        raise ConfigError("kafka.bootstrap_servers: must not be empty")
    for f in fields(cfg.topics):
        topic: TopicConfig = getattr(cfg.topics, f.name)
        if not _TOPIC_NAME.fullmatch(topic.name):
            raise ConfigError(f"topics.{f.name}.name: invalid topic name {brief_repr(topic.name)}")
        if not 1 <= topic.partitions <= 10_000:
            raise ConfigError(f"topics.{f.name}.partitions: must be between 1 and 10,000, got {topic.partitions}")
    for f in fields(cfg.groups):
        group = getattr(cfg.groups, f.name)
        if not 1 <= len(group.strip()) <= 255 or group != group.strip():
            raise ConfigError(f"groups.{f.name}: must be a name of 1 to 255 characters, got {brief_repr(group)}")


def _check_paths(paths: PathsConfig) -> None:
    """The three data folders are plain names inside data_dir; data_dir and originals may be absolute."""
    folders = {"images": paths.images, "events": paths.events, "alerts": paths.alerts}
    for key, value in folders.items():
        try:
            check_id(value)
        except UnsafePathError:
            raise ConfigError(
                f"paths.{key}: must be a plain folder name inside data_dir (letters, digits, '._-'),"
                f" got {brief_repr(value)}"
            ) from None
    if len(set(folders.values())) < len(folders):
        raise ConfigError("paths: images, events and alerts must be three different folders")
    for key in ("data_dir", "originals"):
        if "\x00" in getattr(paths, key):
            raise ConfigError(f"paths.{key}: contains a NUL character")


def _check_subscriptions(subscriptions: tuple[Subscription, ...]) -> None:
    """Names and contacts become alert fields; cameras and event types must be ones that can match."""
    for i, sub in enumerate(subscriptions):
        for key in ("name", "contact"):
            value = getattr(sub, key)
            if not (0 if key == "contact" else 1) <= len(value) <= 200:
                raise ConfigError(f"subscriptions[{i}].{key}: must be 1 to 200 characters, got {brief_repr(value)}")
        for camera in sub.cameras:
            if camera == "*":
                continue
            try:
                check_camera_id(camera)
            except UnsafePathError:
                raise ConfigError(
                    f"subscriptions[{i}].cameras: {brief_repr(camera)} is neither a camera id (letters, digits"
                    f" and '._-', at most {MAX_CAMERA_ID_LEN}) nor \"*\" for every camera"
                ) from None
        for event_type in sub.event_types:
            if event_type not in EVENT_TYPES:
                raise ConfigError(
                    f"subscriptions[{i}].event_types: unknown event type {brief_repr(event_type)}"
                    f" (known: {', '.join(EVENT_TYPES)})"
                )
        if not 0.0 <= sub.min_score <= 1.0:
            raise ConfigError(f"subscriptions[{i}].min_score: must be between 0 and 1, got {sub.min_score}")


def _check_areas(cfg: Config) -> None:
    """Masks and zones are well-formed, and every zone a subscription names exists."""
    try:
        check_areas(cfg.areas)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    known = zone_names(cfg.areas)
    for i, sub in enumerate(cfg.subscriptions):
        for zone in sub.zones:
            if zone not in known:
                raise ConfigError(f"subscriptions[{i}].zones: no camera has a zone {brief_repr(zone)}"
                                  f" (zones: {', '.join(sorted(known)) or 'none'})")


def validate(cfg: Config) -> None:
    """Range checks that types alone cannot express."""
    _check_names(cfg)
    _check_paths(cfg.paths)
    parse_size(cfg.receiver.size, "receiver.size")
    _check_ranges(cfg)
    if cfg.analysis.detector not in DETECTOR_NAMES:
        raise ConfigError(
            f"analysis.detector: unknown detector {brief_repr(cfg.analysis.detector)}"
            f" (known: {', '.join(DETECTOR_NAMES)})"
        )
    _check_subscriptions(cfg.subscriptions)
    _check_areas(cfg)
    if cfg.transport not in ("files", "inline"):
        raise ConfigError(f"transport: must be files or inline, got {brief_repr(cfg.transport)}")
    try:
        check_delivery(cfg)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    try:
        validate_cameras(cfg.cameras)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for i, cam in enumerate(cfg.cameras):
        if cam.size:
            parse_size(cam.size, f"cameras[{i}].size")


def parse_size(text: str, where: str = "size") -> tuple[int, int]:
    """Parse 'WxH' into (width, height)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise ConfigError(f"{where}: expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ConfigError(f"{where}: each side must be between 16 and 8192, got {text!r}")
    return width, height


