"""The native launcher: idempotent start, clean stop, and clear one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from image_pipeline.kafka import broker
from image_pipeline.kafka import runtime as kafka_runtime

PROJECT = Path(__file__).resolve().parent.parent


def run_launcher(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run python -m image_pipeline.kafka.broker as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "image_pipeline.kafka.broker", *args],
        cwd=PROJECT, env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout, check=False,
    )


def java_pids_for(properties: Path) -> list[int]:
    """Pids of java processes started with this instance's server.properties."""
    out = subprocess.run(["pgrep", "-f", str(properties)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.kafka
def test_start_twice_leaves_one_broker_and_stop_leaves_none(tmp_path: Path) -> None:
    env = dict(os.environ, PIPELINE_KAFKA_DIR=str(tmp_path / "kafka"))
    # The jar cache is shared so the test does not download Kafka again.
    (tmp_path / "kafka").mkdir()
    os.symlink(broker.state_root() / broker.KAFKA_VERSION, tmp_path / "kafka" / broker.KAFKA_VERSION)
    port = str(broker.free_port())
    properties = tmp_path / "kafka" / "instances" / port / "server.properties"
    try:
        first = run_launcher("start", "--port", port, env=env)
        assert first.returncode == 0, first.stderr
        assert "ready on" in first.stdout
        second = run_launcher("start", "--port", port, env=env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert len(java_pids_for(properties)) == 1
        status = run_launcher("status", "--port", port, env=env)
        assert status.returncode == 0 and "up" in status.stdout
        assert broker.broker_answers(f"127.0.0.1:{port}")
    finally:
        stopped = run_launcher("stop", "--port", port, env=env)
    assert stopped.returncode == 0
    assert java_pids_for(properties) == []
    down = run_launcher("status", "--port", port, env=env)
    assert down.returncode == 3 and "not running" in down.stdout


def test_port_in_use_gives_one_line_error_naming_the_log(tmp_path: Path) -> None:
    env = dict(os.environ, PIPELINE_KAFKA_DIR=str(tmp_path / "kafka"))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_launcher("start", "--port", str(port), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} is already in use" in lines[0]
    assert "broker.log" in lines[0]


def test_missing_java_gives_one_line_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A PATH with python but without java.
    os.symlink(sys.executable, bin_dir / "python3")
    env = dict(os.environ, PATH=str(bin_dir), PIPELINE_KAFKA_DIR=str(tmp_path / "kafka"))
    env.pop("JAVA_HOME", None)
    result = run_launcher("start", "--port", str(broker.free_port()), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "java not found on PATH" in lines[0] and "broker.log" in lines[0]


def test_too_old_java_is_refused(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_java = bin_dir / "java"
    # A stand-in for an old JRE: prints what Java 11 prints for -version.
    fake_java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake_java.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PIPELINE_KAFKA_DIR=str(tmp_path / "kafka"))
    result = run_launcher("start", "--port", str(broker.free_port()), env=env)
    assert result.returncode == 1
    assert "Java 11" in result.stderr and "needs Java 17+" in result.stderr


def test_properties_describe_a_combined_kraft_node(tmp_path: Path) -> None:
    inst = broker.Instance(port=12345, home=tmp_path)
    broker.write_properties(inst, controller_port=12346)
    props = dict(
        line.split("=", 1) for line in inst.properties_file.read_text().splitlines() if "=" in line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:12345,CONTROLLER://127.0.0.1:12346"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:12346"
    assert props["offsets.topic.replication.factor"] == "1"


def test_cluster_ids_never_look_like_an_option() -> None:
    # The storage tool parses "-t <id>"; an id starting with "-" made one format in 64 fail.
    ids = [kafka_runtime.cluster_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
    assert len(set(ids)) == len(ids)
