"""Kafka clients: producer, consumer and admin factories, and topic creation. The loop is runner.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAlreadyExistsError

from image_pipeline.config import Config, TopicConfig
from image_pipeline.records.inline import message_limit

# ---------------------------------------------------------------- factories


def make_producer(cfg: Config, client_id: str, **overrides: Any) -> KafkaProducer:
    """An idempotent, acks=all producer with deliberate timeouts and light batching."""
    settings: dict[str, Any] = {
        "bootstrap_servers": cfg.kafka.bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        # A send that has not reached Kafka within this time fails for good.
        "delivery_timeout_ms": cfg.kafka.delivery_timeout_ms,
        "request_timeout_ms": cfg.kafka.request_timeout_ms,
        # Batch for a few ms instead of one request per message; latency stays low.
        "linger_ms": 5,
        "batch_size": 64 * 1024,
        "retry_backoff_ms": 200,
        "reconnect_backoff_max_ms": 2000,
        "bootstrap_timeout_ms": cfg.kafka.request_timeout_ms,
        # Inline transport sends whole images: as large as the images topic takes (see _topic_spec).
        "max_request_size": message_limit(cfg.limits.max_image_bytes),
    }
    settings.update(overrides)
    return KafkaProducer(**settings)


def close_producer(producer: KafkaProducer, timeout_s: float = 10.0) -> bool:
    """Flush and close; if Kafka is unreachable, drop what is unsent. Returns whether all was sent."""
    try:
        producer.close(timeout=timeout_s)
        return True
    except KafkaError:
        # kafka-python's close() flushes first and, when the flush times out, raises before it
        # stops its sender thread; stop it here so no half-closed producer is left behind.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        producer._closed = True
        return False


def make_consumer(cfg: Config, group_id: str | None, client_id: str, **overrides: Any) -> KafkaConsumer:
    """A consumer with auto-commit off that starts at the earliest offset of a new group."""
    settings: dict[str, Any] = {
        "bootstrap_servers": cfg.kafka.bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": cfg.kafka.max_poll_interval_ms,
        "session_timeout_ms": cfg.kafka.session_timeout_ms,
        "heartbeat_interval_ms": max(1000, cfg.kafka.session_timeout_ms // 4),
        "request_timeout_ms": max(cfg.kafka.request_timeout_ms, cfg.kafka.session_timeout_ms + 5000),
        # Small batches keep one poll's work far below max.poll.interval.ms;
        # a short fetch wait keeps latency low when traffic is light.
        "max_poll_records": 50,
        "fetch_max_wait_ms": 100,
        "allow_auto_create_topics": False,
        "bootstrap_timeout_ms": cfg.kafka.request_timeout_ms,
    }
    settings.update(overrides)
    return KafkaConsumer(**settings)


def make_admin(cfg: Config) -> KafkaAdminClient:
    """An admin client for topic management."""
    return KafkaAdminClient(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        client_id="image-pipeline-admin",
        request_timeout_ms=cfg.kafka.request_timeout_ms,
        bootstrap_timeout_ms=cfg.kafka.request_timeout_ms,
    )


def ensure_topics(cfg: Config, topics: Iterable[TopicConfig] | None = None) -> list[str]:
    """Create the configured topics that do not exist yet; returns the names created."""
    wanted = list(topics) if topics is not None else cfg.topics.all()
    admin = make_admin(cfg)
    try:
        existing = set(admin.list_topics())
        missing = {t.name: t for t in wanted if t.name not in existing}
        if not missing:
            return []
        spec = {name: _topic_spec(cfg, t) for name, t in missing.items()}
        # Another client may create one between our look and our create.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(spec, wait_for_metadata=True)
        return sorted(missing)
    finally:
        admin.close()


def _topic_spec(cfg: Config, topic: TopicConfig) -> dict[str, Any]:
    """Partitions, replicas and min ISR of one topic, from config.yaml's kafka section."""
    configs = {"min.insync.replicas": str(cfg.kafka.min_insync_replicas)}
    if topic.name == cfg.topics.images.name:
        # Room for an inline image of limits.max_image_bytes; the broker refuses anything larger.
        configs["max.message.bytes"] = str(message_limit(cfg.limits.max_image_bytes))
    return {"num_partitions": topic.partitions, "replication_factor": cfg.kafka.replication_factor,
            "configs": configs}
