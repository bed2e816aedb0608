"""Read the recent records of a topic, and topic sizes, with a short-lived consumer and no group."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from image_pipeline.config import Config
from image_pipeline.kafka import reading as kafka_reading
from image_pipeline.kafka.reading import read_tail
from image_pipeline.messages import MessageError
from image_pipeline.records.inline import listed_fields

logger = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """Kafka did not answer in time; the page shows this instead of the records."""


@dataclass(frozen=True)
class RecentRecord:
    """One record as the web pages show it."""

    topic: str
    partition: int
    offset: int
    timestamp: float  # broker/producer timestamp, epoch seconds
    key: str | None
    value: dict[str, Any] | None
    raw_error: str | None  # set when the value is not a JSON object

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "topic": self.topic, "partition": self.partition, "offset": self.offset,
            "timestamp": self.timestamp, "key": self.key, "value": self.value, "error": self.raw_error,
        }


def _to_record(raw: Any) -> RecentRecord:
    key = raw.key.decode("utf-8", "replace") if raw.key is not None else None
    value: dict[str, Any] | None = None
    error: str | None = None
    try:
        value = listed_fields(raw.value)  # an inline image message shows its envelope, not its JPEG
    except MessageError as exc:
        error = str(exc)
    return RecentRecord(raw.topic, raw.partition, raw.offset, raw.timestamp / 1000.0, key, value, error)


def read_recent(cfg: Config, topics: list[str], limit: int, timeout_s: float = 4.0) -> dict[str, list[RecentRecord]]:
    """The last `limit` records of each topic, newest first; raises KafkaUnavailable."""
    try:
        raw = read_tail(cfg, topics, limit, timeout_s)
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
    return {topic: [_to_record(r) for r in reversed(records)][:limit] for topic, records in raw.items()}


def topic_sizes(cfg: Config, topics: list[str], timeout_s: float = 3.0) -> dict[str, int]:
    """How many records each topic holds now; raises KafkaUnavailable."""
    try:
        return kafka_reading.topic_sizes(cfg, topics, timeout_s)
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
