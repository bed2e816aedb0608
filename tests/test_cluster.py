"""The 3-broker cluster: the command line starts, reports and stops it; topics get RF 3 and min ISR 2."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from image_pipeline.config import load_config
from image_pipeline.kafka import cluster
from image_pipeline.kafka.clients import ensure_topics, make_admin
from tests.cluster_support import kafka_cluster, launcher, needs_cluster, replicated
from tests.conftest import unique

pytestmark = [pytest.mark.kafka, needs_cluster]
__all__ = ["kafka_cluster"]  # the fixture, imported for this module's tests


def test_metadata_lists_three_brokers_and_status_says_so(kafka_cluster: cluster.Cluster) -> None:
    assert cluster.live_brokers(kafka_cluster.bootstrap) == [1, 2, 3]
    # Each node alone is enough to bootstrap from and knows the other two.
    for node in kafka_cluster.nodes:
        assert cluster.live_brokers(node.inst.bootstrap) == [1, 2, 3]
    status = launcher("cluster", "status", "--port", str(kafka_cluster.nodes[0].inst.port))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "3/3 brokers live; under-replicated partitions: 0" in status.stdout


def test_topics_from_config_get_replication_factor_3_and_min_isr_2(kafka_cluster: cluster.Cluster) -> None:
    cfg = replicated(load_config(), kafka_cluster.nodes[0].inst.bootstrap)
    topics = cfg.topics.__class__(**{f: t.__class__(unique(t.name), t.partitions)
                                      for f, t in cfg.topics.__dict__.items()})
    cfg = cfg.replace(topics=topics)
    created = ensure_topics(cfg)
    assert sorted(created) == sorted(t.name for t in cfg.topics.all())
    admin = make_admin(cfg)
    try:
        described = admin.describe_topics([cfg.topics.images.name])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, cfg.topics.images.name)])
    finally:
        admin.close()
    partitions = described[0]["partitions"]
    assert len(partitions) == cfg.topics.images.partitions
    assert all(sorted(p["replica_nodes"]) == [1, 2, 3] for p in partitions)
    # Leaders spread over the brokers, so losing one moves only some partitions.
    assert len({p["leader_id"] for p in partitions}) > 1
    assert configs["topic"][cfg.topics.images.name]["min.insync.replicas"]["value"] == "2"


def test_status_of_a_cluster_that_never_ran_says_not_running() -> None:
    status = launcher("cluster", "status", "--port", "1")
    assert status.returncode == 3 and "not running" in status.stdout
