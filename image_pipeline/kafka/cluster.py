"""A local multi-broker KRaft cluster: N JVMs on one machine, each with its own ports and folder.

Usage: python -m image_pipeline.broker cluster start|stop|status [--brokers 3] [--port 9092] [--fresh]

Every node is a combined broker+controller with a static voter set (controller.quorum.voters):
Kafka 4.1 supports that cleanly, and three voters keep a metadata quorum with one node down. The
cluster is keyed by its first node's client port: .kafka/clusters/<port>/ holds cluster.json (ports
and the cluster id, fixed at format time) and one folder per node, laid out as a single broker's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from image_pipeline.kafka.broker import broker_answers, free_port, port_in_use, read_pid, stop
from image_pipeline.kafka.runtime import (
    KAFKA_VERSION,
    LOG4J2,
    BrokerError,
    Instance,
    check_java,
    cluster_id,
    libs_dir,
    state_root,
)

NODE_HEAP = "-Xmx384m -Xms128m"  # three JVMs on a 2-core machine; KAFKA_HEAP overrides


@dataclass(frozen=True)
class Node:
    """One node of the cluster: a broker and a controller in one JVM."""

    node_id: int
    inst: Instance
    controller_port: int


@dataclass(frozen=True)
class Cluster:
    """A local cluster's folder, id and nodes."""

    home: Path
    cluster_id: str
    nodes: tuple[Node, ...]

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated, for clients that should survive any one loss."""
        return ",".join(n.inst.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> Node:
        """The node with this id."""
        return next(n for n in self.nodes if n.node_id == node_id)


def cluster_home(port: int) -> Path:
    """The folder of the cluster whose first node serves clients on this port."""
    return state_root() / "clusters" / str(port)


def load_or_plan(port: int, brokers: int, fresh: bool) -> Cluster:
    """The recorded cluster on this port, or a new plan of ports (recorded) when there is none."""
    home = cluster_home(port)
    layout = home / "cluster.json"
    if fresh:
        for sub in home.glob("node-*"):
            shutil.rmtree(sub / "data", ignore_errors=True)
        layout.unlink(missing_ok=True)
    if layout.exists():
        return _from_layout(home, json.loads(layout.read_text()))
    ports = _pick_ports(port, brokers)
    raw = {"cluster_id": cluster_id(), "nodes": [{"id": i + 1, "port": p, "controller": c}
                                                 for i, (p, c) in enumerate(ports)]}
    home.mkdir(parents=True, exist_ok=True)
    layout.write_text(json.dumps(raw, indent=1) + "\n")
    return _from_layout(home, raw)


def load(port: int) -> Cluster | None:
    """The recorded cluster on this port, if there is one."""
    layout = cluster_home(port) / "cluster.json"
    return _from_layout(layout.parent, json.loads(layout.read_text())) if layout.exists() else None


def _from_layout(home: Path, raw: dict[str, Any]) -> Cluster:
    nodes = tuple(
        Node(n["id"], Instance(port=n["port"], home=home / f"node-{n['id']}"), n["controller"]) for n in raw["nodes"]
    )
    return Cluster(home, raw["cluster_id"], nodes)


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, where no client connection can take it.

    A node's ports are fixed when it is formatted; a port from free_port() may become the local end
    of some client's connection while its node is down, and the node could not bind it again.
    """
    low, _high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    top = min(low, 65_000) - 20
    for _ in range(200):
        port = random.randrange(max(1024, top - 10_000), top, 10)
        if all(not port_in_use("127.0.0.1", p) for p in range(port, port + 10)):
            return port
    raise BrokerError("no 10 free ports in a row below the ephemeral port range")


def _pick_ports(first: int, brokers: int) -> list[tuple[int, int]]:
    """(client, controller) per node: first, then the next free ports above it."""
    if port_in_use("127.0.0.1", first):
        raise BrokerError(f"port {first} is already in use by another program")
    ports = [first]
    candidate = first + 1
    while len(ports) < 2 * brokers:
        if candidate > 65_000:
            candidate = free_port()
        if candidate not in ports and not port_in_use("127.0.0.1", candidate):
            ports.append(candidate)
        candidate += 1
    return [(ports[2 * i], ports[2 * i + 1]) for i in range(brokers)]


# ---------------------------------------------------------------- files of one node


def node_properties(cluster: Cluster, node: Node) -> dict[str, str]:
    """server.properties of one combined node; internal topics replicated like the pipeline's."""
    size = len(cluster.nodes)
    replicas, min_isr = str(min(3, size)), str(min(2, size))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    inst = node.inst
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{inst.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{inst.port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(inst.data_dir),
        "num.partitions": "1",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # A killed node is fenced, and its partitions get new leaders, after 4 s instead of 9 s: less
        # than the analyzer's idle_close_s, so a broker loss never closes an episode early.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        # A restarted node may lead again at once, so leadership spreads back without a manual step.
        "auto.leader.rebalance.enable": "true",
        "leader.imbalance.check.interval.seconds": "10",
        "log.retention.hours": "168",
        # The cleaner's default 128 MiB dedupe buffer does not fit the small heap of NODE_HEAP.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }


def _java_command(java: str, libs: Path, node: Node, main: list[str]) -> list[str]:
    log4j = node.inst.home / "log4j2.properties"
    log4j.write_text(LOG4J2)
    heap = os.environ.get("KAFKA_HEAP", NODE_HEAP).split()
    return [java, *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*", *main]


def _prepare_node(java: str, libs: Path, cluster: Cluster, node: Node) -> None:
    """Write the node's properties and format its storage once, with the cluster's id."""
    inst = node.inst
    inst.home.mkdir(parents=True, exist_ok=True)
    for port in (inst.port, node.controller_port):
        if port_in_use("127.0.0.1", port):
            raise BrokerError(f"node {node.node_id}: port {port} is already in use; retry with --fresh")
    body = "".join(f"{k}={v}\n" for k, v in node_properties(cluster, node).items())
    inst.properties_file.write_text("# Written by image_pipeline.kafka.cluster\n" + body)
    if (inst.data_dir / "meta.properties").exists():
        return
    cmd = _java_command(java, libs, node, ["kafka.tools.StorageTool", "format", "-t", cluster.cluster_id,
                                           "-c", str(inst.properties_file)])
    with inst.log_file.open("a") as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BrokerError(f"node {node.node_id}: formatting KRaft storage failed (log: {inst.log_file})")


# ---------------------------------------------------------------- start, stop, kill, status


def launch_node(cluster: Cluster, node: Node) -> int:
    """Start one node's JVM in the background (not waiting); returns its pid."""
    pid = read_pid(node.inst)
    if pid is not None:
        return pid
    java = check_java(node.inst.log_file)
    libs = libs_dir()
    _prepare_node(java, libs, cluster, node)
    cmd = _java_command(java, libs, node, ["kafka.Kafka", str(node.inst.properties_file)])
    with node.inst.log_file.open("a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    node.inst.pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def start_cluster(port: int, brokers: int = 3, fresh: bool = False, timeout_s: float = 120.0) -> Cluster:
    """Start every node that is not running and wait until metadata lists all of them."""
    if brokers < 1:
        raise BrokerError("--brokers must be at least 1")
    existing = load(port)
    if existing is not None and fresh and any(read_pid(n.inst) for n in existing.nodes):
        raise BrokerError(f"cluster on port {port} is running; stop it before --fresh")
    cluster = load_or_plan(port, brokers, fresh)
    if len(cluster.nodes) != brokers:
        raise BrokerError(f"cluster on port {port} was formatted with {len(cluster.nodes)} brokers; use --fresh")
    # All voters first: none of them is ready before a quorum of them runs.
    for node in cluster.nodes:
        launch_node(cluster, node)
    wait_for_brokers(cluster, timeout_s)
    return cluster


def wait_for_brokers(cluster: Cluster, timeout_s: float, expect: int | None = None) -> None:
    """Wait until the cluster's metadata lists `expect` live brokers (default: all of them)."""
    expect = len(cluster.nodes) if expect is None else expect
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n in cluster.nodes if read_pid(n.inst) is None and n.inst.pid_file.exists()]
        if dead:
            raise BrokerError(f"node {dead[0].node_id} exited during start-up (log: {dead[0].inst.log_file})")
        if len(live_brokers(cluster.bootstrap)) >= expect:
            return
        time.sleep(0.5)
    raise BrokerError(f"the cluster did not list {expect} brokers within {timeout_s:.0f} s (logs: {cluster.home})")


def live_brokers(bootstrap: str, timeout_s: float = 3.0) -> list[int]:
    """Node ids the cluster's metadata lists as live brokers ([] when nothing answers)."""
    if not broker_answers(bootstrap, timeout_s):
        return []
    with _admin(bootstrap, timeout_s) as admin:
        try:
            brokers = admin.describe_cluster()["brokers"]
        except KafkaError:
            return []
    return sorted(b["broker_id"] for b in brokers if not b.get("is_fenced"))


def stop_cluster(cluster: Cluster, grace_s: float = 60.0) -> int:
    """SIGTERM every node at once, then wait for all; returns how many were running.

    One at a time, the last node waits in controlled shutdown for a controller quorum that has
    already gone; signalled together they all shut down in seconds.
    """
    running = [n for n in cluster.nodes if read_pid(n.inst) is not None]
    for node in running:
        pid = read_pid(node.inst)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    for node in running:
        stop(node.inst, grace_s)  # waits for the SIGTERM above; SIGKILL only after grace_s
    return len(running)


def kill_node(node: Node) -> None:
    """kill -9 one node, as a crash would, and wait until it is gone."""
    pid = read_pid(node.inst)
    if pid is None:
        return
    os.kill(pid, signal.SIGKILL)
    while read_pid(node.inst) is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    node.inst.pid_file.unlink(missing_ok=True)


def under_replicated(bootstrap: str, timeout_s: float = 5.0) -> int:
    """How many partitions of all topics have fewer in-sync replicas than replicas."""
    with _admin(bootstrap, timeout_s) as admin:
        topics = admin.describe_topics()
    return sum(
        len(p["isr_nodes"]) < len(p["replica_nodes"]) for t in topics for p in t["partitions"]
    )


@contextlib.contextmanager
def _admin(bootstrap: str, timeout_s: float) -> Iterator[Any]:
    """An admin client, closed on exit."""
    from kafka import KafkaAdminClient

    ms = int(timeout_s * 1000)
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms,
                              bootstrap_timeout_ms=ms, client_id="cluster-probe")
    try:
        yield client
    finally:
        client.close()


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m image_pipeline.broker cluster",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--brokers", type=int, default=3, help="nodes in a new cluster (default 3)")
    parser.add_argument("--port", type=int, default=9092, help="client port of node 1; picks the cluster")
    parser.add_argument("--fresh", action="store_true", help="wipe the cluster's data before starting")
    parser.add_argument("--purge", action="store_true", help="with stop: also delete the cluster's folder")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for start-up")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m image_pipeline.broker cluster."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "start":
        began = time.monotonic()
        cluster = start_cluster(args.port, args.brokers, fresh=args.fresh, timeout_s=args.timeout)
        print(f"Kafka {KAFKA_VERSION} cluster of {len(cluster.nodes)} brokers ready in "
              f"{time.monotonic() - began:.1f} s; bootstrap {cluster.bootstrap} (folders: {cluster.home})")
        return 0
    found = load(args.port)
    if args.command == "stop":
        stopped = stop_cluster(found) if found else 0
        print(f"Kafka cluster on port {args.port}: stopped {stopped} broker(s)")
        if args.purge:
            shutil.rmtree(cluster_home(args.port), ignore_errors=True)
        return 0
    if found is None:
        print(f"Kafka cluster on port {args.port}: not running")
        return 3
    return _print_status(found)


def _print_status(cluster: Cluster) -> int:
    live = live_brokers(cluster.bootstrap)
    for node in cluster.nodes:
        pid = read_pid(node.inst)
        state = "up" if node.node_id in live else ("not answering" if pid else "not running")
        print(f"node {node.node_id} on {node.inst.bootstrap}: {state}"
              f"{f' (pid {pid})' if pid else ''}; log: {node.inst.log_file}")
    if not live:
        print("cluster: not running")
        return 3
    print(f"cluster: {len(live)}/{len(cluster.nodes)} brokers live; "
          f"under-replicated partitions: {under_replicated(cluster.bootstrap)}")
    return 0 if len(live) == len(cluster.nodes) else 4
