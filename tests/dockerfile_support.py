"""What the container tests share: the Dockerfile's and compose file's paths, and reading the Dockerfile."""

from __future__ import annotations

import shlex
import sys

from devtools import compose_check
from image_pipeline.config import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKER_DOC = PROJECT_ROOT / "README.md"
IMAGE_PORT = 9092
IMAGE_INTERNAL = ("pipeline", 19092)



# ---------------------------------------------------------------- reading the Dockerfile


# Where the image keeps its own Java; a native run keeps the host's.
IMAGE_ONLY_ENV = ("PATH", "JAVA_HOME")


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage (KEY=VALUE form), less the image's own PATH and JAVA_HOME."""
    env: dict[str, str] = {}
    for keyword, rest in compose_check.final_stage(DOCKERFILE):
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {item!r}: use the KEY=VALUE form"
                env[key] = value
    return {k: v for k, v in env.items() if k not in IMAGE_ONLY_ENV}


def healthcheck_cmd() -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK."""
    check = compose_check.dockerfile_healthcheck(DOCKERFILE)
    assert check, "the Dockerfile has no HEALTHCHECK"
    return check


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
