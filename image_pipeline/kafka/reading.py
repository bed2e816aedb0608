"""Reading topics outside any consumer group: recent records, topic sizes, and a group's lag."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka.structs import TopicPartition

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_consumer

logger = logging.getLogger(__name__)


def short_lived_consumer(cfg: Config, timeout_s: float, group: str | None = None) -> Any:
    """A consumer with tight timeouts, so a page or a tool never hangs on Kafka."""
    timeout_ms = int(timeout_s * 1000)
    return make_consumer(
        cfg, group, "image-pipeline-reader",
        request_timeout_ms=max(timeout_ms, 1000) + 500,
        bootstrap_timeout_ms=timeout_ms,
        max_poll_records=500,
    )


def _partitions(consumer: Any, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def read_tail(cfg: Config, topics: list[str], limit: int | None, timeout_s: float = 10.0) -> dict[str, list[Any]]:
    """The last `limit` records of each partition of each topic (all when None), oldest first.

    Raises KafkaError when Kafka does not answer within the timeout.
    """
    result: dict[str, list[Any]] = {t: [] for t in topics}
    consumer = short_lived_consumer(cfg, timeout_s)
    try:
        parts = [tp for topic in topics for tp in _partitions(consumer, topic)]
        if not parts:
            return result
        consumer.assign(parts)
        timeout_ms = int(timeout_s * 1000)
        ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
        begins = consumer.beginning_offsets(parts, timeout_ms=timeout_ms)
        wanted: dict[TopicPartition, int] = {}
        for tp in parts:
            start = begins[tp] if limit is None else max(begins[tp], ends[tp] - limit)
            consumer.seek(tp, start)
            if ends[tp] > start:
                wanted[tp] = ends[tp]
        deadline = time.monotonic() + timeout_s
        while wanted and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                result[tp.topic].extend(r for r in records if r.offset < ends[tp])
                if tp in wanted and consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
        if wanted:
            logger.warning("reading topics: gave up after %.1f s on %s", timeout_s, sorted(map(str, wanted)))
    finally:
        consumer.close(autocommit=False)
    for records in result.values():
        records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return result


def read_recent(cfg: Config, topic: str, limit: int | None = None, timeout_s: float = 10.0) -> list[Any]:
    """The last `limit` records of one topic (all when None), oldest first."""
    records = read_tail(cfg, [topic], limit, timeout_s)[topic]
    return records if limit is None else records[-limit:]


def topic_sizes(cfg: Config, topics: list[str], timeout_s: float = 5.0) -> dict[str, int]:
    """How many records each topic holds (end minus beginning offsets, over all partitions)."""
    consumer = short_lived_consumer(cfg, timeout_s)
    timeout_ms = int(timeout_s * 1000)
    try:
        sizes: dict[str, int] = {}
        for topic in topics:
            parts = _partitions(consumer, topic)
            ends = consumer.end_offsets(parts, timeout_ms=timeout_ms) if parts else {}
            begins = consumer.beginning_offsets(parts, timeout_ms=timeout_ms) if parts else {}
            sizes[topic] = sum(ends[tp] - begins[tp] for tp in parts)
        return sizes
    finally:
        consumer.close(autocommit=False)


def topic_size(cfg: Config, topic: str) -> int:
    """How many records one topic holds."""
    return topic_sizes(cfg, [topic])[topic]


def group_lag(cfg: Config, group: str, topic: str) -> int:
    """Records of a topic that a consumer group has not committed yet."""
    consumer = short_lived_consumer(cfg, 10.0, group=group)
    try:
        parts = _partitions(consumer, topic)
        ends = consumer.end_offsets(parts)
        return sum(max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in parts)
    finally:
        consumer.close(autocommit=False)
