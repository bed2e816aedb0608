"""The README's compose lines: Debian's docker-compose 1.29 through podman's Docker-compatible socket.

`docker compose up -d` starts the broker; `docker compose --profile clients up` adds one container
per client, which reach the broker at pipeline:19092; alerts must appear on the host. podman runs
health checks only under systemd, so a thread here runs the broker's check while compose waits on
it (depends_on: service_healthy), as dockerd would.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.container.engine import Podman, StepError, docker_socket, tail
from devtools.container.flow import CONTAINER, Run, outputs, wait_healthy
from devtools.container.readme import compose_ports_to_loopback, to_podman

CLIENTS = ("receiver", "analysis", "alert", "thumbnails", "web")
INTERNAL_BOOTSTRAP = "pipeline:19092"


def service_containers(podman: Podman, service: str) -> list[str]:
    """Names of the containers compose made for a service."""
    listed = podman.run("ps", "-a", "--filter", f"label=com.docker.compose.service={service}",
                        "--format", "{{.Names}}")
    return listed.stdout.split()


@contextlib.contextmanager
def health_pump(podman: Podman, container: str, every_s: float = 3.0) -> Iterator[None]:
    """Run the container's health check on a schedule, the part of dockerd that podman leaves to systemd."""
    stop = threading.Event()

    def pump() -> None:
        while not stop.wait(every_s):
            podman.run("healthcheck", "run", container, check=False, timeout=60)

    thread = threading.Thread(target=pump, name="health-pump", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=70)


def compose_flow(run: Run) -> str:
    """Build, start the broker, run the clients profile until alerts appear, then take it all down."""
    compose_file = run.workdir / "docker-compose.yml"
    compose_file.write_text(compose_ports_to_loopback(compose_file.read_text(), run.ports), encoding="utf-8")
    with docker_socket(run.podman, run.logs / "podman.sock", run.logs / "podman-service.log") as host:
        env = {"DOCKER_HOST": host}
        run.readme_line("docker compose build", timeout=900, extra_env=env)
        _check_image_keeps_healthcheck(run)
        run.readme_line("docker compose up -d", timeout=300, extra_env=env)
        healthy = wait_healthy(run.podman, CONTAINER)
        status = run.readme_line("docker compose ps", extra_env=env).stdout
        if "healthy" not in status:
            raise StepError(f"docker compose ps does not show the broker healthy:\n{status}")
        try:
            with health_pump(run.podman, CONTAINER):
                result = _clients_up(run, env)
        finally:
            run.readme_line("docker compose down --volumes", timeout=300, extra_env=env, check=False)
    return f"broker healthy after {healthy:.0f} s; {result}"


def _check_image_keeps_healthcheck(run: Run) -> None:
    test = run.podman.run("image", "inspect", "--format", "{{.Config.Healthcheck}}", "image-pipeline").stdout
    if "image_pipeline.kafka.broker" not in test:
        raise StepError(f"the image built through the socket lost its HEALTHCHECK: {test.strip()}")


def _clients_up(run: Run, env: dict[str, str]) -> str:
    line = to_podman(run.readme.find("docker compose --profile clients up"))
    log = run.logs / "compose-clients-up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(["bash", "-c", line], cwd=run.workdir, env={**run.podman.env, **env},
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        waited = _wait_for_alerts(run, up, log, timeout_s=240)
        _check_clients(run)
        counts = outputs(run.workdir)
        # docker-compose exec wants a terminal, as a user has one.
        listing = run.readme_line("docker compose exec pipeline ls", extra_env=env, tty=True).stdout
        if ".json" not in listing:
            raise StepError(f"docker compose exec pipeline ls shows no event or alert:\n{listing}")
    finally:
        run.readme_line("docker compose --profile clients down", timeout=300, extra_env=env, check=False)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    return f"alerts after {waited:.0f} s; {counts['images']} images, {counts['events']} events, " \
           f"{counts['alerts']} alerts on the host"


def _wait_for_alerts(run: Run, up: subprocess.Popen[bytes], log: Path, timeout_s: float) -> float:
    """Seconds until the receiver has exited 0 and an alert is on the host."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if up.poll() is not None:
            raise StepError(f"docker-compose up exited with {up.returncode}\n{tail(log.read_text(errors='replace'))}")
        done = _exit_codes(run.podman, "receiver")
        if done and done != ["0"]:
            raise StepError(f"the receiver service exited with {done}\n{tail(log.read_text(errors='replace'))}")
        if done == ["0"] and outputs(run.workdir)["alerts"]:
            return time.monotonic() - began
        time.sleep(2)
    raise StepError(f"no alert within {timeout_s:.0f} s of docker compose --profile clients up\n"
                    f"{tail(log.read_text(errors='replace'))}")


def _exit_codes(podman: Podman, service: str) -> list[str]:
    codes = []
    for name in service_containers(podman, service):
        state = podman.run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
        if state and state[0] == "exited":
            codes.append(state[1])
    return codes


def _check_clients(run: Run) -> None:
    """Bug 1: no client is marked unhealthy; the Kafka clients were given pipeline:19092 and used it."""
    problems = []
    for service in CLIENTS:
        names = service_containers(run.podman, service)
        if not names:
            problems.append(f"{service}: no container")
            continue
        health = run.podman.run("healthcheck", "run", names[0], check=False, timeout=60)
        if "unhealthy" in health.stdout + health.stderr:
            problems.append(f"{service}: marked unhealthy by the image's HEALTHCHECK")
        env = run.podman.run("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", names[0]).stdout
        if service != "web" and f"KAFKA_BOOTSTRAP_SERVERS={INTERNAL_BOOTSTRAP}" not in env.split():
            problems.append(f"{service}: KAFKA_BOOTSTRAP_SERVERS is not {INTERNAL_BOOTSTRAP}")
    analysis = service_containers(run.podman, "analysis")
    logs = run.podman.run("logs", analysis[0], check=False) if analysis else None
    if logs is not None and INTERNAL_BOOTSTRAP not in logs.stdout + logs.stderr:
        problems.append(f"analysis: its log does not say it consumes from {INTERNAL_BOOTSTRAP}")
    if problems:
        raise StepError("; ".join(problems))
