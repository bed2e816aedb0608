"""Simulated hosts: each stage has a private data folder, images travel inline, on the 3-broker cluster.

No stage can read another's files, yet the events and alerts equal those of the shared-folder,
files-mode run of the same seed on a single broker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.runner import PipelineProcesses, isolated_config
from image_pipeline.config import Config, load_config
from image_pipeline.kafka import broker, cluster
from tests.cluster_support import kafka_cluster, needs_cluster, replicated
from tests.conftest import make_pipeline_config
from tests.pipeline_support import alert_ids, event_records, run_reference, without_times

pytestmark = [pytest.mark.kafka, pytest.mark.slow, needs_cluster]
__all__ = ["kafka_cluster"]

RECEIVER_ARGS = ("--cameras", "3", "--frames", "110", "--seed", "31", "--size", "320x240", "--fps", "0")
HOSTS = ("receiver", "analyzer", "alerter", "thumbnails")


def alert_records(cfg: Config) -> dict[str, Any]:
    """Every alert record by event id, without wall-clock values and without `paths.previous_image`.

    The alerter copies previous_image from the event record on the analyzer's disk; event messages do
    not carry it yet (README, "Growing past one machine", what is still missing), so a private alerter
    leaves it out. Everything else must match.
    """
    out = {}
    for path in sorted(cfg.alerts_dir.glob("*.json")):
        record = without_times(json.loads(path.read_text()))
        record.get("paths", {}).pop("previous_image", None)
        out[path.stem] = record
    return out


@pytest.fixture(scope="module")
def single_broker_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    """The shared-folder, files-mode run of RECEIVER_ARGS on a single broker of its own."""
    inst = broker.instance_for(broker.free_port())
    broker.start(inst, fresh=True)
    try:
        root = tmp_path_factory.mktemp("single-broker")
        cfg = make_pipeline_config(root / "data", inst.bootstrap)
        run_reference(cfg, root / "run", *RECEIVER_ARGS)
        assert event_records(cfg)
        yield cfg
    finally:
        broker.stop_and_purge(inst)


def host_config(shared: Config, root: Path) -> Config:
    """One host's config: the run's topics and groups, its own data folder, inline transport."""
    for folder in (shared.paths.images, shared.paths.events, shared.paths.alerts):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return shared.with_overrides(data_dir=str(root))


def test_stages_on_private_folders_give_the_single_broker_events_and_alerts(
    single_broker_reference: Config, kafka_cluster: cluster.Cluster, tmp_path: Path
) -> None:
    shared = isolated_config(replicated(load_config(), kafka_cluster.bootstrap), tmp_path / "unused")
    shared = shared.replace(transport="inline")
    hosts = {name: host_config(shared, tmp_path / f"{name}-host") for name in HOSTS}
    procs = {name: PipelineProcesses(cfg, tmp_path / f"{name}-run") for name, cfg in hosts.items()}
    try:
        procs["alerter"].start("alerter")
        procs["analyzer"].start("analyzer")
        procs["thumbnails"].start("thumbnails")
        receiver = procs["receiver"].run("receiver", *RECEIVER_ARGS, timeout=300)
        assert receiver.process.returncode == 0, receiver.output()
        assert procs["analyzer"].wait_drained(timeout=240)
        codes = {name: p.stop_all() for name, p in procs.items() if name != "receiver"}
    finally:
        for p in procs.values():
            p.__exit__(None, None, None)
    assert all(code == 0 for per_host in codes.values() for code in per_host.values()), codes
    assert event_records(hosts["analyzer"]) == event_records(single_broker_reference)
    assert alert_ids(hosts["alerter"]) == alert_ids(single_broker_reference)
    assert alert_records(hosts["alerter"]) == alert_records(single_broker_reference)
    # Each host holds only its own stage's files: originals only where they were received.
    assert not any(hosts["analyzer"].images_dir.rglob("*.jpg"))
    assert not any(hosts["alerter"].events_dir.iterdir())
    assert any(hosts["thumbnails"].images_dir.rglob("*.jpg")), "thumbnails made from the messages alone"
