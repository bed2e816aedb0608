"""podman with this test's own configuration and image storage, so the machine's podman set-up is left alone.

Every podman call of the container test goes through `Podman`: it points podman at config files
written for this run (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF) and at
an image store of its own, which keeps the base images and the build cache between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Images and build cache outlive a run (that is the stand-ins' cache); run-time state does not.
STATE_DIR = Path(os.environ.get("PIPELINE_PODMAN_DIR", "/var/lib/image-pipeline-podman"))
RUN_DIR = Path(os.environ.get("PIPELINE_PODMAN_RUN_DIR", "/run/image-pipeline-podman"))

CONTAINERS_CONF = """\
[containers]
# Without explicit limits runc and crun try to raise them to the host's and fail in this VM
# with "setrlimit ... Operation not permitted".
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "netavark"
network_config_dir = "{state}/networks"

[engine]
# crun 1.8 refuses this VM's hybrid (v1 + v2) cgroup layout; runc with cgroupfs works, and
# there is no systemd to manage cgroups anyway.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{run}/libpod"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{state}/storage"
runroot = "{run}/storage"
"""

# Short names such as python:3.11-slim-bookworm resolve to Docker Hub, as docker resolves them.
REGISTRIES_CONF = 'unqualified-search-registries = ["docker.io"]\n'


class StepError(Exception):
    """A step of the container test failed; the message is one line plus the output that shows why."""


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a command's output."""
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Podman:
    """Runs podman, and shell lines that call podman or docker-compose, with this test's configuration."""

    env: dict[str, str]
    log: Path

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`podman ARGS`; a StepError with the output's end when it fails and check is set."""
        return self.call(["podman", *args], timeout=timeout, check=check)

    def shell(
        self, line: str, cwd: Path, timeout: float = 600, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One bash line, as a user types it in cwd."""
        return self.call(["bash", "-c", line], cwd=cwd, timeout=timeout, check=check, extra_env=extra_env)

    def call(
        self, cmd: list[str], cwd: Path | None = None, timeout: float = 600, check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with this test's environment, logging it and its output."""
        shown = cmd[2] if cmd[:2] == ["bash", "-c"] else shlex.join(cmd)
        began = time.monotonic()
        try:
            result = subprocess.run(
                cmd, cwd=cwd, env={**self.env, **(extra_env or {})}, capture_output=True, text=True,
                timeout=timeout, check=False, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            output = _text(exc.stdout) + _text(exc.stderr)
            self._record(shown, None, output, time.monotonic() - began)
            raise StepError(f"`{shown}` did not finish within {timeout:.0f} s\n{tail(output)}") from exc
        self._record(shown, result.returncode, result.stdout + result.stderr, time.monotonic() - began)
        if check and result.returncode != 0:
            raise StepError(f"`{shown}` exited with {result.returncode}\n{tail(result.stdout + result.stderr)}")
        return result

    def _record(self, shown: str, code: int | None, output: str, seconds: float) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"$ {shown}\n{output.rstrip()}\n[exit {code}, {seconds:.1f} s]\n\n")

    def exists(self, image: str) -> bool:
        """Whether the image is in this test's store."""
        return self.run("image", "exists", image, check=False).returncode == 0

    def label(self, image: str, key: str) -> str:
        """A label of a stored image ('' when it has none)."""
        fmt = "{{index .Labels " + f'"{key}"' + "}}"
        value = self.run("image", "inspect", "--format", fmt, image).stdout.strip()
        return "" if value == "<no value>" else value


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def write_config(conf_dir: Path, state: Path = STATE_DIR, run: Path = RUN_DIR) -> dict[str, str]:
    """Write this run's podman configuration into conf_dir; the environment variables that select it."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    for folder in (state / "networks", state / "storage", run):
        folder.mkdir(parents=True, exist_ok=True)
    files = {
        "CONTAINERS_CONF": ("containers.conf", CONTAINERS_CONF.format(state=state, run=run)),
        "CONTAINERS_STORAGE_CONF": ("storage.conf", STORAGE_CONF.format(state=state, run=run)),
        "CONTAINERS_REGISTRIES_CONF": ("registries.conf", REGISTRIES_CONF),
    }
    env = {}
    for variable, (name, text) in files.items():
        (conf_dir / name).write_text(text, encoding="utf-8")
        env[variable] = str(conf_dir / name)
    return env


@contextlib.contextmanager
def exclusive(state: Path = STATE_DIR) -> Iterator[None]:
    """Hold the store's lock: two runs at once would fight over pipeline_container and the ports."""
    state.mkdir(parents=True, exist_ok=True)
    with (state / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"container-test: another run holds {state / 'lock'}; waiting for it", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def docker_socket(podman: Podman, path: Path, log: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket, for docker-compose; yields its DOCKER_HOST."""
    path.unlink(missing_ok=True)
    with log.open("ab") as out:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{path}"],
            env=podman.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        _wait_for_ping(path, service, timeout_s=30)
        yield f"unix://{path}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        path.unlink(missing_ok=True)


def _wait_for_ping(path: Path, service: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise StepError(f"podman system service exited with {service.returncode}")
        if ping(path):
            return
        time.sleep(0.2)
    raise StepError(f"podman's API socket {path} did not answer within {timeout_s:.0f} s")


def ping(path: Path) -> bool:
    """Whether a Docker-compatible API answers GET /_ping on the unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200" in status_line
    except OSError:
        return False
