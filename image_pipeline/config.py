"""Load and validate config.yaml, then apply environment and command-line overrides."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from image_pipeline.model import DETECTOR_NAMES, EVENT_TYPES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    delivery_timeout_ms: int = 120_000
    request_timeout_ms: int = 15_000
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000


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

    def all(self) -> list[TopicConfig]:
        """Every topic of the pipeline."""
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class GroupsConfig:
    analyzer: str = "image-analysis"
    alerter: str = "image-alert"
    thumbnails: str = "image-thumbnails"


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
    contact: str
    cameras: tuple[str, ...] = ("*",)
    event_types: tuple[str, ...] = EVENT_TYPES
    min_score: float = 0.0

    def matches(self, camera_id: str, event_type: str, score: float) -> bool:
        """Whether an event of this camera, type and score concerns this subscriber."""
        camera_ok = "*" in self.cameras or camera_id in self.cameras
        return camera_ok and event_type in self.event_types and score >= self.min_score


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
    # Folder that relative data paths are resolved against (the config file's folder).
    base_dir: str = str(PROJECT_ROOT)

    @property
    def data_dir(self) -> Path:
        """Absolute folder that holds the four data folders."""
        return (Path(self.base_dir) / self.paths.data_dir).resolve()

    @property
    def images_dir(self) -> Path:
        """The image database."""
        return self.data_dir / self.paths.images

    @property
    def events_dir(self) -> Path:
        """The event database."""
        return self.data_dir / self.paths.events

    @property
    def alerts_dir(self) -> Path:
        """The alert records."""
        return self.data_dir / self.paths.alerts

    @property
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
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def _build(cls: type[T], raw: Any, where: str) -> T:
    """Build a dataclass from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key")
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
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if getattr(hint, "__origin__", None) is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_hint = hint.__args__[0]
        return tuple(_coerce(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover


def _validate(cfg: Config) -> None:
    """Range checks that types alone cannot express."""
    for topic in cfg.topics.all():
        if not _TOPIC_NAME.match(topic.name):
            raise ConfigError(f"topics: invalid topic name {topic.name!r}")
        if topic.partitions < 1:
            raise ConfigError(f"topics.{topic.name}.partitions: must be at least 1")
    parse_size(cfg.receiver.size, "receiver.size")
    positive = {
        "receiver.cameras": cfg.receiver.cameras,
        "receiver.frames": cfg.receiver.frames,
        "analysis.warmup_frames": cfg.analysis.warmup_frames,
        "analysis.update_every": cfg.analysis.update_every,
        "limits.max_image_bytes": cfg.limits.max_image_bytes,
        "limits.max_pixels": cfg.limits.max_pixels,
        "web.max_upload_bytes": cfg.web.max_upload_bytes,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}: must be at least 1, got {value}")
    if cfg.analysis.detector not in DETECTOR_NAMES:
        raise ConfigError(
            f"analysis.detector: unknown detector {cfg.analysis.detector!r} (known: {', '.join(DETECTOR_NAMES)})"
        )
    if not cfg.analysis.idle_close_s > 0:
        raise ConfigError("analysis.idle_close_s: must be more than 0 seconds")
    if cfg.receiver.fps < 0:
        raise ConfigError("receiver.fps: must be 0 (as fast as possible) or more")
    if not 1 <= cfg.receiver.jpeg_quality <= 100:
        raise ConfigError("receiver.jpeg_quality: must be between 1 and 100")
    for i, sub in enumerate(cfg.subscriptions):
        for event_type in sub.event_types:
            if event_type not in EVENT_TYPES:
                raise ConfigError(
                    f"subscriptions[{i}].event_types: unknown event type {event_type!r}"
                    f" (known: {', '.join(EVENT_TYPES)})"
                )


def parse_size(text: str, where: str = "size") -> tuple[int, int]:
    """Parse 'WxH' into (width, height)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise ConfigError(f"{where}: expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ConfigError(f"{where}: each side must be between 16 and 8192, got {text!r}")
    return width, height


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read config.yaml, validate it whole, then apply environment overrides."""
    config_path = Path(path) if path else DEFAULT_CONFIG_PATH
    env = dict(os.environ) if env is None else env
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    raw.pop("base_dir", None)
    cfg = _build(Config, raw, "config")
    cfg = cfg.replace(base_dir=str(config_path.resolve().parent))
    cfg = cfg.with_overrides(
        bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS"),
        data_dir=env.get("PIPELINE_DATA_DIR"),
    )
    _validate(cfg)
    return cfg
