"""Shared fixtures: a live Kafka broker for the session, unique topics and a per-test pipeline config."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.runner import isolated_config
from image_pipeline.config import Config, TopicConfig, load_config
from image_pipeline.kafka import broker
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.web import create_app


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real broker: the one `make test` started, or one started here."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given and broker.broker_answers(given):
        yield given
        return
    inst = broker.instance_for(broker.free_port())
    try:
        broker.start(inst, fresh=True)
    except broker.BrokerError as exc:
        # A free port can be taken between our look and Kafka's bind; try once more elsewhere.
        print(f"session broker did not start ({exc}); retrying on another port")
        inst = broker.instance_for(broker.free_port())
        broker.start(inst, fresh=True)
    try:
        yield inst.bootstrap
    finally:
        broker.stop_and_purge(inst)


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


# Tests compare whole runs file by file. An idle close is the one output driven by the wall clock (a
# partition verified quiet for idle_close_s), so a slow shutdown on a loaded machine could add "end"
# records to one run and not the other. These runs keep it out; tests/test_idle_close.py and
# tests/test_steps.py test it on purpose.
TEST_IDLE_CLOSE_S = 3600.0


def make_pipeline_config(root: Path, bootstrap: str, image_partitions: int = 2) -> Config:
    """A config whose topics, groups and data folders belong to one test alone."""
    cfg = isolated_config(load_config().with_overrides(bootstrap_servers=bootstrap), root, image_partitions)
    return cfg.replace(analysis=dataclasses.replace(cfg.analysis, idle_close_s=TEST_IDLE_CLOSE_S))


@pytest.fixture
def pipeline_config(tmp_path: Path, kafka_bootstrap: str) -> Config:
    """A pipeline config on the live broker with this test's own topics, groups and folders."""
    return make_pipeline_config(tmp_path, kafka_bootstrap)


@pytest.fixture
def app(pipeline_config: Config) -> Iterator[Flask]:
    """A web app over this test's topics and data folders."""
    app = create_app(pipeline_config, testing=True)
    yield app
    app.extensions["image_pipeline"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the web app."""
    return app.test_client()
