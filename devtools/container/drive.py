"""`python -m devtools.container`: every step of the container test in order, timed; the first failure ends it.

Prints one line per step and a summary with the image size. On failure it names the step, prints
the end of the output that shows why, keeps the project copy and the logs, and exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devtools.container import compose, flow
from devtools.container.engine import STATE_DIR, Podman, StepError, exclusive, write_config
from devtools.container.readme import Readme
from devtools.container.standins import ensure_base_images
from image_pipeline.config import PROJECT_ROOT

README_PORTS = (9092, 5000)
TOOLS = ("podman", "runc", "debootstrap", "docker-compose", "mvn")
# podman's helpers: --init's init, and the network stack whose DNS lets services find "pipeline".
HELPERS = ("/usr/libexec/podman/catatonit", "/usr/lib/podman/netavark", "/usr/lib/podman/aardvark-dns")


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host_ports() -> dict[int, int]:
    """The README's ports where they are free here, other free ones where they are taken."""
    return {port: port if port_is_free(port) else free_port() for port in README_PORTS}


def project_files(root: Path) -> list[Path]:
    """What a fresh clone of the working tree holds: tracked and new files, not the ignored ones."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=root, capture_output=True, check=True).stdout.decode()
    return [Path(name) for name in listed.split("\0") if name and (root / name).is_file()]


def copy_project(root: Path, target: Path) -> None:
    """Copy the working tree as a fresh clone would have it, owned by whoever runs the test."""
    for relative in project_files(root):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, destination)


def missing_tools() -> list[str]:
    """Commands the test needs that are not installed (.ci/run installs them)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None] + [
        helper for helper in HELPERS if not Path(helper).exists()
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m devtools.container."""
    parser = argparse.ArgumentParser(prog="python -m devtools.container", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the project copy and the logs after a pass")
    parser.add_argument("--no-compose", action="store_true", help="skip the docker-compose part")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("container-test: needs root (rootful podman, debootstrap); CI runs as root", file=sys.stderr)
        return 1
    if missing_tools():
        print(f"container-test: not installed: {' '.join(missing_tools())} (.ci/run installs them)", file=sys.stderr)
        return 1
    with exclusive():
        return _run(args.keep, args.no_compose)


def _run(keep: bool, no_compose: bool) -> int:
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="container-test-", dir="/var/tmp"))
    logs = scratch / "logs"
    logs.mkdir()
    podman = Podman({**os.environ, **write_config(scratch / "conf")}, logs / "commands.log")
    workdir = scratch / "image-pipeline"
    run = flow.Run(podman, Readme.load(PROJECT_ROOT / "README.md"), workdir, host_ports(), logs)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("base images", lambda: _bases(podman)),
        ("copy the project", lambda: _copy(workdir)),
        ("docker build", lambda: flow.build_image(run)),
        ("docker run", lambda: flow.start_container(run)),
        ("unwritable folder: one line", lambda: flow.unwritable_folder_is_one_line(run)),
        ("folders to the image's user", lambda: flow.hand_folders_to_image_user(run)),
        ("docker exec: each client, web", lambda: flow.run_clients(run)),
        ("files on the host", lambda: flow.check_host_folders(run)),
        ("host client on localhost:9092", lambda: flow.host_client(run)),
        ("clean_image_dirs.sh", lambda: flow.clean_folders(run)),
        ("docker stop", lambda: flow.stop_container(run)),
        ("docker rm, volume rm", lambda: flow.remove_container(run)),
        ("build with your own ids", lambda: flow.build_with_own_ids(run)),
    ]
    if not no_compose:
        steps.append(("docker compose --profile clients up", lambda: compose.compose_flow(run)))
    print(f"container-test: podman store {STATE_DIR}, logs in {logs}, host ports {run.ports}", flush=True)
    _clean_up(podman)  # what a run that was killed half-way left behind
    failed = None
    try:
        for name, step in steps:
            failed = name
            _step(name, step, began)
        failed = None
        size = flow.image_size(podman, flow.IMAGE)
    except (StepError, ValueError, OSError, subprocess.SubprocessError) as exc:
        print(f"container-test: FAILED at step '{failed}': {exc}", file=sys.stderr, flush=True)
    finally:
        _clean_up(podman)
    for note in run.notes:
        print(f"container-test: note: {note}")
    if failed:
        print(f"container-test: the project copy and every command's output are in {scratch}", file=sys.stderr)
        return 1
    print(f"container-test: passed in {time.monotonic() - began:.0f} s; image-pipeline is {size}", flush=True)
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _step(name: str, step: Callable[[], str], began: float) -> None:
    started = time.monotonic()
    print(f"[{started - began:5.0f} s] {name} ...", flush=True)
    result = step()
    print(f"[{time.monotonic() - began:5.0f} s] {name}: ok ({time.monotonic() - started:.0f} s) {result}", flush=True)


def _bases(podman: Podman) -> str:
    report = ensure_base_images(podman, PROJECT_ROOT / "Dockerfile")
    return "; ".join(f"{image}: {how}" for image, how in report.items())


def _copy(workdir: Path) -> str:
    copy_project(PROJECT_ROOT, workdir)
    return str(workdir)


def _clean_up(podman: Podman) -> None:
    """Remove every container and volume of the test's own store; the images stay as the next run's cache."""
    podman.run("rm", "--all", "--force", "--time", "5", check=False, timeout=120)
    podman.run("volume", "prune", "--force", check=False)
    podman.run("network", "prune", "--force", check=False)
