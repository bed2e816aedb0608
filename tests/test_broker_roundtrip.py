"""Real messages through the real broker: produce, consume, and topic creation is idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from image_pipeline.config import TopicConfig, load_config
from image_pipeline.kafka.clients import ensure_topics, make_admin, make_consumer, make_producer


def test_produce_then_consume_round_trip(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    cfg = load_config().with_overrides(bootstrap_servers=kafka_bootstrap)
    topic = topic_factory("roundtrip", partitions=2)
    producer = make_producer(cfg, "test-producer")
    sent = [f"message-{i}".encode() for i in range(20)]
    for i, value in enumerate(sent):
        producer.send(topic, key=f"cam-{i % 3}".encode(), value=value)
    producer.flush()
    producer.close()

    consumer = make_consumer(cfg, f"g-{uuid.uuid4().hex[:8]}", "test-consumer")
    consumer.subscribe([topic])
    received: list[bytes] = []
    for _ in range(30):
        for records in consumer.poll(timeout_ms=1000).values():
            received.extend(r.value for r in records)
        if len(received) >= len(sent):
            break
    consumer.close()
    assert sorted(received) == sorted(sent)


def test_per_key_order_is_kept(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    cfg = load_config().with_overrides(bootstrap_servers=kafka_bootstrap)
    topic = topic_factory("order", partitions=3)
    producer = make_producer(cfg, "order-producer")
    for seq in range(30):
        for cam in ("a", "b", "c"):
            producer.send(topic, key=cam.encode(), value=f"{cam}:{seq}".encode())
    producer.flush()
    producer.close()
    consumer = make_consumer(cfg, f"g-{uuid.uuid4().hex[:8]}", "order-consumer")
    consumer.subscribe([topic])
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for _ in range(30):
        for records in consumer.poll(timeout_ms=1000).values():
            for r in records:
                cam, seq = r.value.decode().split(":")
                seen[cam].append(int(seq))
        if sum(map(len, seen.values())) >= 90:
            break
    consumer.close()
    assert all(v == list(range(30)) for v in seen.values()), seen


def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    cfg = load_config().with_overrides(bootstrap_servers=kafka_bootstrap)
    name = f"idem-{uuid.uuid4().hex[:8]}"
    topics = [TopicConfig(name, 3)]
    assert ensure_topics(cfg, topics) == [name]
    assert ensure_topics(cfg, topics) == []
    admin = make_admin(cfg)
    try:
        described = admin.describe_topics([name])
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == 3
