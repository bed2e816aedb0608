"""Load and validate config.yaml, then apply environment and command-line overrides."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import types
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.config_checks import parse_size as parse_size  # re-exported: clients parse WxH with it
from image_pipeline.config_checks import validate
from image_pipeline.delivery.settings import (
    DeliveryConfig,
    Notify,
    SmtpConfig,
)
from image_pipeline.errors import ConfigError
from image_pipeline.model import EVENT_TYPES, EventType
from image_pipeline.storage import brief_repr
from image_pipeline.zones import CameraAreas

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    delivery_timeout_ms: int = 120_000
    request_timeout_ms: int = 15_000
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000
    # Topics the pipeline creates: 1/1 on one broker; 3/2 on a cluster survives losing one broker.
    replication_factor: int = 1
    min_insync_replicas: int = 1


@dataclass(frozen=True)
class TopicConfig:
    name: str
    partitions: int = 1


@dataclass(frozen=True)
class TopicsConfig:
    images: TopicConfig = TopicConfig("images", 4)
    events: TopicConfig = TopicConfig("image-events", 4)
    alerts: TopicConfig = TopicConfig("image-alerts", 1)
    dead_letter: TopicConfig = TopicConfig("image-dead-letter", 1)
    errors: TopicConfig = TopicConfig("image-errors", 1)
    deliveries: TopicConfig = TopicConfig("image-alert-deliveries", 4)  # keyed by destination
    camera_status: TopicConfig = TopicConfig("camera-status", 1)

    def all(self) -> list[TopicConfig]:
        """Every topic of the pipeline."""
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class GroupsConfig:
    analyzer: str = "image-analysis"
    alerter: str = "image-alert"
    thumbnails: str = "image-thumbnails"
    delivery: str = "image-alert-delivery"
    camera_monitor: str = "camera-monitor"


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str = "."
    images: str = "image_database"
    events: str = "image_event_database"
    alerts: str = "image_event_alerts"
    originals: str = "image_original"


@dataclass(frozen=True)
class ReceiverConfig:
    cameras: int = 2
    frames: int = 150
    fps: float = 10.0
    seed: int = 1
    size: str = "640x480"
    jpeg_quality: int = 90


@dataclass(frozen=True)
class AnalysisConfig:
    warmup_frames: int = 400
    update_every: int = 10
    detector: str = "blocks"
    idle_close_s: float = 10.0


@dataclass(frozen=True)
class LimitsConfig:
    max_image_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    max_side: int = 10_000


@dataclass(frozen=True)
class WebConfig:
    port: int = 5000
    max_upload_bytes: int = 10_000_000
    recent_messages: int = 50


@dataclass(frozen=True)
class Subscription:
    name: str
    contact: str = ""  # listed in the alert record (the file channel)
    cameras: tuple[str, ...] = ("*",)
    event_types: tuple[str, ...] = EVENT_TYPES
    min_score: float = 0.0
    # Channels (delivery/settings.py); none means the file channel only, as before.
    notify: tuple[Notify, ...] = ()
    # At most one delivery per camera and event type in this window; the rest go into the next one.
    cooldown_s: float = 60.0
    # Zone names (areas: in config.yaml): an intrusion counts only when a box's foot point is in one.
    zones: tuple[str, ...] = ()

    def matches(self, camera_id: str, event_type: str, score: float,
                zones_hit: frozenset[str] = frozenset()) -> bool:
        """Whether an event of this camera, type and score (in these zones) concerns this subscriber."""
        camera_ok = "*" in self.cameras or camera_id in self.cameras
        zone_ok = not self.zones or event_type != EventType.INTRUSION or bool(zones_hit & set(self.zones))
        return camera_ok and zone_ok and event_type in self.event_types and score >= self.min_score


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    subscriptions: tuple[Subscription, ...] = ()
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    cameras: tuple[CameraConfig, ...] = ()  # real cameras (cameras/); empty: the receiver synthesizes
    areas: tuple[CameraAreas, ...] = ()  # motion masks and zones per camera id (zones.py)
    # How images reach the consumers: files (the message names a file in the shared image database)
    # or inline (the message carries the JPEG; README, "Growing past one machine").
    transport: str = "files"
    # Folder that relative data paths are resolved against (the config file's folder).
    base_dir: str = str(PROJECT_ROOT)

    @functools.cached_property  # resolved once: paths are built for every record
    def data_dir(self) -> Path:
        """Absolute folder that holds the four data folders."""
        return (Path(self.base_dir) / self.paths.data_dir).resolve()

    @functools.cached_property  # resolved once: paths are built for every record
    def images_dir(self) -> Path:
        """The image database."""
        return self.data_dir / self.paths.images

    @functools.cached_property  # resolved once: paths are built for every record
    def events_dir(self) -> Path:
        """The event database."""
        return self.data_dir / self.paths.events

    @functools.cached_property  # resolved once: paths are built for every record
    def alerts_dir(self) -> Path:
        """The alert records."""
        return self.data_dir / self.paths.alerts

    @functools.cached_property  # resolved once: paths are built for every record
    def originals_dir(self) -> Path:
        """Background photos for synthesis: a project asset, so relative to the config's folder."""
        return (Path(self.base_dir) / self.paths.originals).resolve()

    def replace(self, **changes: Any) -> Config:
        """A copy with some top-level sections replaced."""
        return dataclasses.replace(self, **changes)

    def with_overrides(
        self, bootstrap_servers: str | None = None, data_dir: str | None = None
    ) -> Config:
        """A copy with the Kafka address and/or data folder replaced."""
        cfg = self
        if bootstrap_servers:
            cfg = cfg.replace(
                kafka=dataclasses.replace(cfg.kafka, bootstrap_servers=bootstrap_servers)
            )
        if data_dir:
            absolute = str(Path(data_dir).resolve())
            cfg = cfg.replace(paths=dataclasses.replace(cfg.paths, data_dir=absolute))
        return cfg


T = TypeVar("T")
_LONG_NUMBER = re.compile(r"[0-9_]{1000,}")


def _build(cls: type[T], raw: Any, where: str) -> T:
    """Build a dataclass from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    aliases: dict[str, str] = getattr(cls, "ALIASES", {})  # YAML keys that are Python keywords
    raw = {aliases.get(k, k) if isinstance(k, str) else k: v for k, v in raw.items()}
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - known, key=str)  # YAML keys may be numbers too
    if unknown:
        raise ConfigError(f"{where}.{str(unknown[0])[:60]}: unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check one value against its declared type, converting where it is safe."""
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if isinstance(hint, types.UnionType) and type(None) in hint.__args__:  # `X | None`
        if value is None:
            return None
        return _coerce(next(a for a in hint.__args__ if a is not type(None)), value, where)
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {brief_repr(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {brief_repr(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {brief_repr(value)}")
        return float(value)
    if getattr(hint, "__origin__", None) is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {brief_repr(value)}")
        item_hint = hint.__args__[0]
        return tuple(_coerce(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover


def _read_yaml(config_path: Path) -> Any:
    """The parsed YAML of the file; every way it can be unreadable is one ConfigError line naming it."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{config_path}: not valid YAML ({where}{exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise ConfigError(f"{config_path}: not valid YAML (nested too deeply)") from None
    except (ValueError, TypeError) as exc:  # a value YAML cannot build: a date 2001-13-45, !!int "x"
        long = _LONG_NUMBER.search(text)
        if long:  # Python refuses to convert integers of more than 4300 digits
            line = text.count("\n", 0, long.start()) + 1
            raise ConfigError(f"{config_path}: line {line}: a number of {len(long.group())} digits") from None
        raise ConfigError(f"{config_path}: not valid YAML ({' '.join(str(exc).split())})") from None


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read config.yaml, validate it whole, then apply environment overrides."""
    config_path = Path(path) if path else DEFAULT_CONFIG_PATH
    env = dict(os.environ) if env is None else env
    raw = _read_yaml(config_path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    raw.pop("base_dir", None)
    cfg = _build(Config, raw, "config")
    cfg = cfg.replace(base_dir=str(config_path.resolve().parent))
    cfg = cfg.with_overrides(
        bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS"),
        data_dir=env.get("PIPELINE_DATA_DIR"),
    )
    validate(cfg)
    return cfg
