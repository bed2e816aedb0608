"""The image's own CMD and HEALTHCHECK, run natively against an /opt/kafka-like layout of the cached jars."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import compose_check
from devtools.runner import write_config
from image_pipeline.config import PROJECT_ROOT
from image_pipeline.kafka import broker
from image_pipeline.kafka.reading import group_lag, topic_size
from tests.conftest import make_pipeline_config
from tests.dockerfile_support import (
    DOCKERFILE,
    as_native,
    dockerfile_env,
    healthcheck_cmd,
    replace_option,
)

# ---------------------------------------------------------------- the image's command, natively


@pytest.fixture
def opt_kafka(tmp_path: Path) -> Path:
    """An /opt/kafka-like KAFKA_HOME: libs/ with the cached Kafka jars, as the image copies them."""
    saved = os.environ.pop("KAFKA_HOME", None)
    try:
        cached = broker.libs_dir()
    finally:
        if saved is not None:
            os.environ["KAFKA_HOME"] = saved
    home = tmp_path / "opt" / "kafka"
    (home / "libs").mkdir(parents=True)
    for jar in cached.glob("*.jar"):
        (home / "libs" / jar.name).symlink_to(jar)
    return home


@dataclasses.dataclass
class ImageBroker:
    """Kafka started by the image's CMD."""

    proc: subprocess.Popen[bytes]
    port: int
    internal_port: int
    env: dict[str, str]
    log: Path

    def tail(self) -> str:
        """The end of what Kafka printed."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def image_broker(tmp_path: Path, opt_kafka: Path) -> Iterator[ImageBroker]:
    """Runs the Dockerfile's CMD with the Dockerfile's ENV; only paths and ports are changed."""
    port, internal_port = broker.free_port(), broker.free_port()
    cmd = compose_check.dockerfile_cmd(DOCKERFILE)
    cmd = replace_option(cmd, "--port", str(port))
    cmd = replace_option(cmd, "--internal-listener", f"localhost:{internal_port}")
    image_env = dockerfile_env()
    assert image_env["KAFKA_HOME"] == "/opt/kafka"
    env = {
        **os.environ, **image_env,
        "KAFKA_HOME": str(opt_kafka),
        "PIPELINE_KAFKA_DIR": str(tmp_path / "kafka-state"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    log = tmp_path / "container-stdout.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            as_native(cmd), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = ImageBroker(proc, port, internal_port, env, log)
    try:
        deadline = time.monotonic() + 120
        while not broker.broker_answers(f"127.0.0.1:{port}", timeout_s=2.0):
            assert proc.poll() is None, f"the image's command exited with {proc.returncode}:\n{running.tail()}"
            assert time.monotonic() < deadline, f"Kafka did not answer within 120 s:\n{running.tail()}"
            time.sleep(0.5)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def advertised(bootstrap: str) -> list[tuple[str, int]]:
    """(host, port) of the brokers a client is told about when it bootstraps from this address."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="advertised-probe", request_timeout_ms=10000)
    try:
        return [(b["host"], int(b["port"])) for b in admin.describe_cluster()["brokers"]]
    finally:
        admin.close()


def run_client(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one top-level client script as the README's docker exec lines do."""
    result = subprocess.run(
        [sys.executable, script, *args], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.kafka
@pytest.mark.slow
def test_image_command_serves_both_listeners_and_one_image_goes_through(
    tmp_path: Path, image_broker: ImageBroker
) -> None:
    port, internal = image_broker.port, image_broker.internal_port
    assert advertised(f"127.0.0.1:{port}") == [("localhost", port)]
    assert advertised(f"127.0.0.1:{internal}") == [("localhost", internal)]

    health = as_native(replace_option(healthcheck_cmd(), "--port", str(port)))
    check = subprocess.run(health, cwd=PROJECT_ROOT, env=image_broker.env, capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"HEALTHCHECK failed: {check.stdout}{check.stderr}"

    data = tmp_path / "data"
    outside = f"localhost:{port}"  # what clients in the container and on the host use
    inside = f"localhost:{internal}"  # what compose client services use (pipeline:19092)
    cfg = make_pipeline_config(data, outside)
    config_file = write_config(cfg, tmp_path / "config.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "PIPELINE_DATA_DIR")}
    common = ["--config", str(config_file), "--data-dir", str(data)]

    run_client("image_receiving.py", "--cameras", "1", "--frames", "3", "--fps", "0", "--size", "320x240",
               "--bootstrap-servers", outside, *common, env=env)
    run_client("image_analysis.py", "--until-idle", "5", "--bootstrap-servers", inside, *common, env=env)
    run_client("image_event_alert.py", "--until-idle", "5", "--bootstrap-servers", outside, *common, env=env)

    stored = [p for p in cfg.images_dir.rglob("*") if p.suffix in (".jpg", ".jpeg", ".png")]
    assert len(stored) == 3, f"expected 3 images in {cfg.images_dir}, found {stored}"
    assert topic_size(cfg, cfg.topics.images.name) == 3
    assert group_lag(cfg, cfg.groups.analyzer, cfg.topics.images.name) == 0, "the analyzer did not commit every image"

    began = time.monotonic()
    image_broker.proc.send_signal(signal.SIGTERM)
    try:
        code = image_broker.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Kafka did not exit within 60 s of SIGTERM:\n{image_broker.tail()}")
    # The JVM runs Kafka's shutdown hook and exits 143 (128 + SIGTERM) or 0.
    assert code in (0, 128 + signal.SIGTERM), f"exit code {code}:\n{image_broker.tail()}"
    assert time.monotonic() - began < 60
