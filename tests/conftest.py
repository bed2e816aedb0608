"""Shared fixtures: a live Kafka broker for the session, unique topics and a per-test pipeline config."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from image_pipeline import broker
from image_pipeline.config import Config, TopicConfig, TopicsConfig, load_config
from image_pipeline.kafka_io import ensure_topics


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real broker: the one `make test` started, or one started here."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given and broker.broker_answers(given):
        yield given
        return
    inst = broker.instance_for(broker.free_port())
    broker.start(inst, fresh=True)
    try:
        yield inst.bootstrap
    finally:
        broker.stop(inst)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """Creates a topic with a unique name on the live broker and returns the name."""
    cfg = load_config().with_overrides(bootstrap_servers=kafka_bootstrap)

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = unique(prefix)
        ensure_topics(cfg, [TopicConfig(name, partitions)])
        return name

    return make


def make_pipeline_config(root: Path, bootstrap: str, image_partitions: int = 2) -> Config:
    """A config whose topics, groups and data folders belong to one test alone."""
    cfg = load_config().with_overrides(bootstrap_servers=bootstrap, data_dir=str(root))
    tag = uuid.uuid4().hex[:8]
    topics = TopicsConfig(
        images=TopicConfig(f"images-{tag}", image_partitions),
        events=TopicConfig(f"events-{tag}", 2),
        alerts=TopicConfig(f"alerts-{tag}", 1),
        dead_letter=TopicConfig(f"dlq-{tag}", 1),
        errors=TopicConfig(f"errors-{tag}", 1),
    )
    groups = dataclasses.replace(
        cfg.groups, analyzer=f"analysis-{tag}", alerter=f"alert-{tag}", thumbnails=f"thumbs-{tag}"
    )
    for folder in ("image_database", "image_event_database", "image_event_alerts"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    cfg = cfg.replace(topics=topics, groups=groups)
    ensure_topics(cfg)
    return cfg


@pytest.fixture
def pipeline_config(tmp_path: Path, kafka_bootstrap: str) -> Config:
    """A pipeline config on the live broker with this test's own topics, groups and folders."""
    return make_pipeline_config(tmp_path, kafka_bootstrap)
