"""Broker loss on the 3-broker cluster (RF 3, min ISR 2): kill -9 a broker mid-run, then the bootstrap one.

Nothing is lost or duplicated and the events and alerts equal an undisturbed run's; each killed
broker restarts, rejoins, and its replicas catch up (no under-replicated partition left).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from devtools.runner import PipelineProcesses, isolated_config
from image_pipeline.config import Config, load_config
from image_pipeline.kafka import cluster
from image_pipeline.kafka.clients import make_admin
from image_pipeline.kafka.reading import group_lag, read_recent, topic_size
from tests.cluster_support import kafka_cluster, needs_cluster, replicated, wait_for
from tests.pipeline_support import alert_ids, alertable, derived_image_bytes, event_records, run_reference

pytestmark = [pytest.mark.kafka, pytest.mark.slow, needs_cluster]
__all__ = ["kafka_cluster"]

CAMERAS, FRAMES = 3, 110
RECEIVER_ARGS = ("--cameras", str(CAMERAS), "--frames", str(FRAMES), "--seed", "31", "--size", "320x240")


def cluster_config(root: Path, bootstrap: str) -> Config:
    """This test's own topics, groups and folders on the cluster, replicated 3 ways with min ISR 2."""
    return isolated_config(replicated(load_config(), bootstrap), root)


def committed_images(cfg: Config) -> int:
    """How many image messages the analyzer group has committed."""
    return topic_size(cfg, cfg.topics.images.name) - group_lag(cfg, cfg.groups.analyzer, cfg.topics.images.name)


def kill_and_restart(found: cluster.Cluster, node_id: int, watch: Config, label: str) -> dict[str, float]:
    """kill -9 a node, see the pipeline go on without it, restart it, wait for its replicas to catch up."""
    node = found.node(node_id)
    before = committed_images(watch)
    cluster.kill_node(node)
    killed_at = time.monotonic()
    # The two brokers left hold a quorum and an ISR of 2: the analyzer keeps committing.
    wait_for(lambda: committed_images(watch) >= before + 15, 60, f"progress with broker {node_id} down")
    progress_s = time.monotonic() - killed_at
    cluster.launch_node(found, node)
    cluster.wait_for_brokers(found, 90)
    rejoined_s = time.monotonic() - killed_at
    caught_up_s = rejoined_s + wait_for(lambda: cluster.under_replicated(found.bootstrap) == 0, 90,
                                        f"broker {node_id}'s replicas to catch up")
    figures = {"progress_s": progress_s, "rejoined_s": rejoined_s, "in_sync_s": caught_up_s}
    print(f"{label}: killed broker {node_id}; pipeline went on after {progress_s:.1f} s; "
          f"rejoined after {rejoined_s:.1f} s; under-replicated partitions 0 after {caught_up_s:.1f} s")
    return figures


def assert_replicated(cfg: Config) -> None:
    """Every topic of the run has three replicas, so losing one broker loses no partition."""
    admin = make_admin(cfg)
    try:
        described = admin.describe_topics([t.name for t in cfg.topics.all()])
    finally:
        admin.close()
    assert all(len(p["replica_nodes"]) == 3 for t in described for p in t["partitions"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, kafka_cluster: cluster.Cluster) -> Config:
    """An undisturbed run of RECEIVER_ARGS on the cluster."""
    root = tmp_path_factory.mktemp("cluster-reference")
    cfg = cluster_config(root / "data", kafka_cluster.bootstrap)
    run_reference(cfg, root / "run", *RECEIVER_ARGS, "--fps", "0")
    assert event_records(cfg), "the reference run found events"
    return cfg


def test_killing_a_broker_then_the_bootstrap_one_loses_and_repeats_nothing(
    reference: Config, kafka_cluster: cluster.Cluster, tmp_path: Path
) -> None:
    first = kafka_cluster.nodes[0].inst.bootstrap
    # Every client bootstraps from node 1 alone; the test watches through all three.
    cfg = cluster_config(tmp_path / "data", first)
    watch = cfg.with_overrides(bootstrap_servers=kafka_cluster.bootstrap)
    total = CAMERAS * FRAMES
    assert_replicated(watch)
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        procs.start("alerter")
        procs.start("analyzer")
        # 2 fps per camera: 55 s of frames, longer than the two kills and restarts take.
        receiver = procs.start("receiver", *RECEIVER_ARGS, "--fps", "2")
        wait_for(lambda: committed_images(watch) >= 20, 120, "the first images analyzed")
        kill_and_restart(kafka_cluster, 3, watch, "not the bootstrap broker")
        kill_and_restart(kafka_cluster, 1, watch, "the bootstrap broker")
        assert receiver.process.poll() is None, "both kills happened while the receiver was producing"
        assert receiver.process.wait(timeout=180) == 0, receiver.output()
        procs.cfg = watch  # wait_drained asks Kafka through all three brokers
        assert procs.wait_drained(timeout=180)
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    images = [json.loads(r.value)["image_id"] for r in read_recent(watch, cfg.topics.images.name)]
    assert len(images) == total and len(set(images)) == total, "every image announced exactly once"
    assert committed_images(watch) == total
    assert event_records(cfg) == event_records(reference)
    assert derived_image_bytes(cfg) == derived_image_bytes(reference)
    assert alert_ids(cfg) == alertable(cfg, event_records(cfg)) == alert_ids(reference)
    alerts = Counter(json.loads(r.value)["event_id"] for r in read_recent(watch, cfg.topics.alerts.name))
    assert sorted(alerts) == alert_ids(cfg) and set(alerts.values()) == {1}, "one alert message per alert"
    events = Counter((v["event_id"], v["phase"], v["frame_count"])
                     for v in (json.loads(r.value) for r in read_recent(watch, cfg.topics.events.name)))
    assert set(events.values()) == {1}, "no event message twice"
