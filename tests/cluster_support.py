"""A 3-broker cluster for the tests of make test-cluster (PIPELINE_TEST_CLUSTER=1), started by the CLI."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaError

from image_pipeline.config import Config
from image_pipeline.kafka import cluster
from tests.conftest import TEST_IDLE_CLOSE_S

PROJECT = Path(__file__).resolve().parent.parent
ENABLED = bool(os.environ.get("PIPELINE_TEST_CLUSTER"))
# make test runs one broker; these tests start three JVMs of their own, so they run in make test-cluster.
needs_cluster = pytest.mark.skipif(not ENABLED, reason="cluster tests run in make test-cluster")


def launcher(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run python -m image_pipeline.broker as a user would."""
    return subprocess.run([sys.executable, "-m", "image_pipeline.broker", *args], cwd=PROJECT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def start_test_cluster() -> cluster.Cluster:
    """A fresh 3-broker cluster on free ports, started with the command line."""
    port = str(cluster.quiet_port())
    started = launcher("cluster", "start", "--brokers", "3", "--port", port, "--fresh")
    assert started.returncode == 0, started.stdout + started.stderr
    found = cluster.load(int(port))
    assert found is not None
    return found


def stop_test_cluster(found: cluster.Cluster) -> None:
    """Stop and delete the cluster, whatever state the test left it in."""
    port = str(found.nodes[0].inst.port)
    stopped = launcher("cluster", "stop", "--port", port, "--purge")
    assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[cluster.Cluster]:
    """A running 3-broker cluster for this module's tests."""
    found = start_test_cluster()
    try:
        yield found
    finally:
        stop_test_cluster(found)


def replicated(cfg: Config, bootstrap: str) -> Config:
    """The config on this cluster, with replication factor 3 and min ISR 2 (config.yaml's kafka section).

    Runs are compared file by file, so the wall-clock idle close stays out, as in make_pipeline_config.
    """
    cfg = cfg.with_overrides(bootstrap_servers=bootstrap)
    kafka = dataclasses.replace(cfg.kafka, replication_factor=3, min_insync_replicas=2)
    return cfg.replace(kafka=kafka, analysis=dataclasses.replace(cfg.analysis, idle_close_s=TEST_IDLE_CLOSE_S))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll until predicate holds; returns the seconds it took. A Kafka error counts as not yet.

    While a killed broker's partitions wait for new leaders, a probe of their offsets fails: that is
    the probe's trouble, not the pipeline's.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if predicate():
                return time.monotonic() - began
        except (KafkaError, KeyError):  # kafka-python's end_offsets raises KeyError for a leaderless partition
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
