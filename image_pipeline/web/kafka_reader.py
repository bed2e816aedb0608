"""Read the recent records of a topic, and topic sizes, with a short-lived consumer and no group."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from image_pipeline.config import Config
from image_pipeline.kafka_io import make_consumer
from image_pipeline.messages import MessageError, parse_json

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


def _short_lived_consumer(cfg: Config, timeout_ms: int) -> Any:
    """A consumer outside any group, with tight timeouts so a page never hangs on Kafka."""
    return make_consumer(
        cfg, None, "image-web-reader",
        request_timeout_ms=max(timeout_ms, 1000) + 500,
        bootstrap_timeout_ms=timeout_ms,
        enable_auto_commit=False,
        max_poll_records=500,
    )


def _partitions(consumer: Any, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]


def _to_record(raw: Any) -> RecentRecord:
    key = raw.key.decode("utf-8", "replace") if raw.key is not None else None
    value: dict[str, Any] | None = None
    error: str | None = None
    try:
        value = parse_json(raw.value)
    except MessageError as exc:
        error = str(exc)
    return RecentRecord(raw.topic, raw.partition, raw.offset, raw.timestamp / 1000.0, key, value, error)


def read_recent(cfg: Config, topics: list[str], limit: int, timeout_s: float = 4.0) -> dict[str, list[RecentRecord]]:
    """The last `limit` records of each topic, newest first; raises KafkaUnavailable."""
    timeout_ms = int(timeout_s * 1000)
    result: dict[str, list[RecentRecord]] = {t: [] for t in topics}
    try:
        consumer = _short_lived_consumer(cfg, timeout_ms)
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
    try:
        parts = [tp for topic in topics for tp in _partitions(consumer, topic)]
        if not parts:
            return result
        consumer.assign(parts)
        ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
        begins = consumer.beginning_offsets(parts, timeout_ms=timeout_ms)
        wanted: dict[TopicPartition, int] = {}
        for tp in parts:
            start = max(begins[tp], ends[tp] - limit)
            consumer.seek(tp, start)
            if ends[tp] > start:
                wanted[tp] = ends[tp]
        deadline = time.monotonic() + timeout_s
        while wanted and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                for raw in records:
                    result[tp.topic].append(_to_record(raw))
                if tp in wanted and consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
        if wanted:
            logger.warning("recent records: gave up after %.1f s on %s", timeout_s, sorted(map(str, wanted)))
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
    finally:
        consumer.close(autocommit=False)
    for topic in topics:
        result[topic].sort(key=lambda r: (r.timestamp, r.offset), reverse=True)
        result[topic] = result[topic][:limit]
    return result


def topic_sizes(cfg: Config, topics: list[str], timeout_s: float = 3.0) -> dict[str, int]:
    """How many records each topic holds now (end minus beginning offsets, over all partitions)."""
    timeout_ms = int(timeout_s * 1000)
    try:
        consumer = _short_lived_consumer(cfg, timeout_ms)
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
    try:
        sizes: dict[str, int] = {}
        for topic in topics:
            parts = _partitions(consumer, topic)
            if not parts:
                sizes[topic] = 0
                continue
            ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
            begins = consumer.beginning_offsets(parts, timeout_ms=timeout_ms)
            sizes[topic] = sum(ends[tp] - begins[tp] for tp in parts)
        return sizes
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {cfg.kafka.bootstrap_servers} did not answer: {exc}") from None
    finally:
        consumer.close(autocommit=False)
