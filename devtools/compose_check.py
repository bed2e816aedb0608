"""Check docker-compose.yml: docker-compose's own validation plus the parts the pipeline relies on.

Usage: python -m devtools.compose_check [docker-compose.yml]

Prints one line per problem and exits 1 if there is any. `docker-compose config -q` (or
`docker compose config -q`) runs when installed; the structural checks always run, because
compose accepts many files that are valid but would not work with our image.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

SERVICE = "pipeline"
CONTAINER_NAME = "pipeline_container"
KAFKA_PORT = 9092
WEB_PORT = 5000
DATA_FOLDERS = ("image_original", "image_database", "image_event_database", "image_event_alerts")
DEFAULT_WORKDIR = "/pipeline"


@dataclass(frozen=True)
class Mount:
    """One entry of a service's volumes."""

    source: str
    target: str

    @property
    def is_named_volume(self) -> bool:
        """Whether source names a volume rather than a host path."""
        return bool(self.source) and not self.source.startswith((".", "/", "~", "$"))


# ---------------------------------------------------------------- docker-compose itself


def compose_command() -> list[str] | None:
    """The installed compose CLI: docker-compose (v1) or the docker compose plugin, if any."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def compose_cli_problems(path: Path, profiles: list[str], timeout_s: float = 60.0) -> list[str] | None:
    """Problems `config -q` reports with every profile enabled, or None if no compose CLI is installed."""
    cli = compose_command()
    if cli is None:
        return None
    cmd = [*cli, "-f", str(path)]
    for profile in profiles:
        cmd += ["--profile", profile]
    cmd += ["config", "-q"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return [f"{shlex.join(cmd)}: no answer within {timeout_s:.0f} s"]
    if result.returncode == 0:
        return []
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return [f"{' '.join(cli)} config: {line}" for line in lines] or [
        f"{shlex.join(cmd)} failed with exit code {result.returncode}"
    ]


# ---------------------------------------------------------------- the Dockerfile the service builds


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile as dockerfile-parse reads it, comments dropped."""
    parser = DockerfileParser(path=str(path))
    return [(str(item["instruction"]).upper(), str(item["value"])) for item in parser.structure
            if item["instruction"] != "COMMENT"]


def final_stage(path: Path) -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage, from its FROM on."""
    instructions = dockerfile_instructions(path)
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1]:] if starts else instructions


def dockerfile_workdir(path: Path) -> str:
    """The final stage's last WORKDIR (where the scripts and data folders are)."""
    workdir = "/"
    for keyword, rest in final_stage(path):
        if keyword == "WORKDIR":
            workdir = rest if rest.startswith("/") else f"{workdir.rstrip('/')}/{rest}"
    return workdir


def _exec_form(path: Path, what: str, text: str) -> list[str]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path}: {what} must be a JSON list of strings")
    return value


def dockerfile_cmd(path: Path) -> list[str]:
    """The last CMD of a Dockerfile, which must be in exec (JSON) form."""
    cmd = DockerfileParser(path=str(path)).cmd
    if not cmd:
        raise ValueError(f"{path}: no CMD")
    return _exec_form(path, "CMD", cmd)


def dockerfile_healthcheck(path: Path) -> list[str] | None:
    """The final stage's HEALTHCHECK command in exec form, or None when it has none (or NONE)."""
    checks = [rest for keyword, rest in final_stage(path) if keyword == "HEALTHCHECK"]
    if not checks or checks[-1].strip().upper() == "NONE":
        return None
    parts = re.split(r"(?:^|\s)CMD\s+", checks[-1], maxsplit=1)
    if len(parts) != 2:
        raise ValueError(f"{path}: HEALTHCHECK without CMD")
    return _exec_form(path, "HEALTHCHECK CMD", parts[1])


# ---------------------------------------------------------------- parsing compose entries


def parse_port(entry: Any) -> tuple[int | None, int] | None:
    """(published, target) of a port entry in short or long syntax; None if unreadable."""
    if isinstance(entry, dict):
        target, published = entry.get("target"), entry.get("published")
        try:
            return (int(published) if published is not None else None), int(str(target))
        except (TypeError, ValueError):
            return None
    text = str(entry).split("/")[0]
    parts = text.rsplit(":", 2)
    try:
        if len(parts) == 1:
            return None, int(parts[0])
        return int(parts[-2]), int(parts[-1])
    except ValueError:
        return None


def parse_mount(entry: Any) -> Mount | None:
    """A volumes entry in short ("src:dst[:mode]") or long syntax; None if unreadable."""
    if isinstance(entry, dict):
        return Mount(str(entry.get("source", "")), str(entry.get("target", "")))
    parts = str(entry).split(":")
    if len(parts) == 1:
        return Mount("", parts[0])
    return Mount(parts[0], parts[1])


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# ---------------------------------------------------------------- structural checks


def structural_problems(doc: Any, base_dir: Path) -> list[str]:
    """Everything about the file that the image, the README and the clients rely on."""
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        return ["the file has no 'services' mapping"]
    services: dict[str, Any] = doc["services"]
    main = services.get(SERVICE)
    if not isinstance(main, dict):
        return [f"no service named '{SERVICE}'"]
    declared = doc.get("volumes") or {}
    problems = _main_service_problems(main, base_dir, declared)
    workdir = _workdir(main, base_dir)
    image_check = _image_healthcheck(main, base_dir)
    for name, service in services.items():
        if name != SERVICE:
            problems += _client_problems(name, service, main, workdir, declared)
            problems += _client_health_problems(name, service, image_check)
    return problems


def _dockerfile(main: dict[str, Any], base_dir: Path) -> Path | None:
    build = main.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return None
    dockerfile = base_dir / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))
    return dockerfile if dockerfile.is_file() else None


def _workdir(main: dict[str, Any], base_dir: Path) -> str:
    dockerfile = _dockerfile(main, base_dir)
    return dockerfile_workdir(dockerfile) if dockerfile else DEFAULT_WORKDIR


def _image_healthcheck(main: dict[str, Any], base_dir: Path) -> list[str] | None:
    dockerfile = _dockerfile(main, base_dir)
    return dockerfile_healthcheck(dockerfile) if dockerfile else None


def _client_health_problems(name: str, service: Any, image_check: list[str] | None) -> list[str]:
    """A client runs the broker's image, so it inherits the image's HEALTHCHECK unless it says otherwise."""
    if image_check is None or not isinstance(service, dict):
        return []
    where = f"services.{name}.healthcheck"
    health = service.get("healthcheck")
    if isinstance(health, dict) and health.get("disable") is True:
        return []
    test = health.get("test") if isinstance(health, dict) else None
    if test in (["NONE"], "NONE"):
        return []
    inherited = f"the image's HEALTHCHECK ({shlex.join(image_check)}) checks the broker, not this client,"
    if not test:
        return [f"{where}: missing; {inherited} and marks the client unhealthy in its own container:"
                " declare healthcheck: {disable: true} or a check of its own"]
    if test in (["CMD", *image_check], f"CMD-SHELL {shlex.join(image_check)}"):
        return [f"{where}.test: repeats {inherited} use healthcheck: {{disable: true}} or a check of its own"]
    return []


def _main_service_problems(main: dict[str, Any], base_dir: Path, declared: Any) -> list[str]:
    where = f"services.{SERVICE}"
    problems: list[str] = []
    if main.get("container_name") != CONTAINER_NAME:
        problems.append(
            f"{where}.container_name: must be '{CONTAINER_NAME}' (the README's docker exec lines use it),"
            f" got {main.get('container_name')!r}"
        )
    build = main.get("build")
    if build is None:
        problems.append(f"{where}.build: missing; the service must be built from the project's Dockerfile")
    else:
        context = build if isinstance(build, str) else (build.get("context", ".") if isinstance(build, dict) else "")
        dockerfile = "Dockerfile" if not isinstance(build, dict) else str(build.get("dockerfile", "Dockerfile"))
        if not (base_dir / str(context) / dockerfile).is_file():
            problems.append(f"{where}.build: {Path(str(context)) / dockerfile} does not exist")
    if not main.get("image"):
        problems.append(f"{where}.image: missing; name the image so the README's docker rmi line matches")

    ports = [parse_port(p) for p in main.get("ports") or []]
    if None in ports:
        problems.append(f"{where}.ports: an entry could not be read: {main.get('ports')!r}")
    mapped = {p[1]: p[0] for p in ports if p is not None}
    if mapped.get(KAFKA_PORT) != KAFKA_PORT:
        problems.append(
            f"{where}.ports: must publish {KAFKA_PORT}:{KAFKA_PORT}; the broker advertises localhost:{KAFKA_PORT},"
            " so host clients must reach it on that same port"
        )
    if WEB_PORT not in mapped or mapped[WEB_PORT] is None:
        problems.append(f"{where}.ports: must publish the web server's port {WEB_PORT}")

    problems += _data_mount_problems(where, main, _workdir(main, base_dir), declared)

    health = main.get("healthcheck")
    if not isinstance(health, dict) or health.get("disable") or not health.get("test"):
        problems.append(f"{where}.healthcheck: missing or disabled; clients wait for it (depends_on service_healthy)")
    elif health["test"] in (["NONE"], "NONE"):
        problems.append(f"{where}.healthcheck.test: NONE disables the check")
    return problems


def _data_mount_problems(where: str, service: dict[str, Any], workdir: str, declared: Any) -> list[str]:
    mounts = [parse_mount(v) for v in service.get("volumes") or []]
    by_target = {m.target.rstrip("/"): m for m in mounts if m is not None}
    problems = []
    for folder in DATA_FOLDERS:
        target = f"{workdir.rstrip('/')}/{folder}"
        mount = by_target.get(target)
        if mount is None or not mount.source:
            problems.append(f"{where}.volumes: {target} must be a bind mount or a named volume, so its data outlives"
                            " the container")
        elif mount.is_named_volume and not (isinstance(declared, dict) and mount.source in declared):
            problems.append(f"{where}.volumes: named volume '{mount.source}' is not declared under top-level volumes")
    return problems


def _client_problems(
    name: str, service: Any, main: dict[str, Any], workdir: str, declared: Any
) -> list[str]:
    where = f"services.{name}"
    if not isinstance(service, dict):
        return [f"{where}: expected a mapping"]
    problems: list[str] = []
    if not service.get("profiles"):
        problems.append(f"{where}.profiles: missing; without a profile `docker compose up` would start this client")
    if service.get("image") != main.get("image"):
        problems.append(
            f"{where}.image: must be the pipeline's image {main.get('image')!r}, got {service.get('image')!r}"
        )
    if "build" in service and service["build"] != main.get("build"):
        problems.append(f"{where}.build: differs from services.{SERVICE}.build; every service runs the same image")
    if service.get("container_name") == CONTAINER_NAME:
        problems.append(f"{where}.container_name: '{CONTAINER_NAME}' belongs to services.{SERVICE}")
    if not service.get("command"):
        problems.append(f"{where}.command: missing; it would run the image's CMD, a second Kafka")
    problems += _data_mount_problems(where, service, workdir, declared)
    shares_network = str(service.get("network_mode", "")) == f"service:{SERVICE}"
    bootstrap = environment(service).get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not shares_network and (not bootstrap or bootstrap.split(":")[0] in ("localhost", "127.0.0.1")):
        problems.append(
            f"{where}.environment.KAFKA_BOOTSTRAP_SERVERS: must name the pipeline service (e.g. {SERVICE}:19092),"
            f" got {bootstrap!r}; localhost is this client's own container"
        )
    return problems


# ---------------------------------------------------------------- command line


def check_file(path: Path, run_cli: bool = True) -> tuple[list[str], str | None]:
    """(problems, note): a note says what could not be checked."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{path}: no such file"], None
    except yaml.YAMLError as exc:
        return [f"{path}: not valid YAML ({' '.join(str(exc).split())})"], None
    problems = structural_problems(doc, path.resolve().parent)
    note = None
    if run_cli:
        services = doc.get("services") if isinstance(doc, dict) else None
        profiles = sorted({
            str(p) for s in (services or {}).values() if isinstance(s, dict) for p in s.get("profiles") or []
        })
        cli_problems = compose_cli_problems(path, profiles)
        if cli_problems is None:
            note = "neither docker-compose nor 'docker compose' is installed; only the structural checks ran"
        else:
            problems = cli_problems + problems
    return problems, note


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m devtools.compose_check."""
    parser = argparse.ArgumentParser(prog="python -m devtools.compose_check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "file", nargs="?", default="docker-compose.yml", help="compose file (default docker-compose.yml)"
    )
    parser.add_argument("--no-cli", action="store_true", help="skip `docker-compose config -q`")
    args = parser.parse_args(argv)
    path = Path(args.file)
    problems, note = check_file(path, run_cli=not args.no_cli)
    if note:
        print(f"note: {note}", file=sys.stderr)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
