"""One container, as the README's "Run: Kafka in the container, one `docker exec` per client" shows it.

Each step runs the README's own line (see readme.py for the few changes) in a copy of the project,
then checks what a user would look at: the health check, the files in the bind-mounted folders on
the host, the web page, the clean-up script, and Kafka's exit on `docker stop`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools.container.engine import Podman, StepError, tail
from devtools.container.readme import Readme, bind_ports_to_loopback, to_podman

CONTAINER = "pipeline_container"
IMAGE = "image-pipeline"
DATA_FOLDERS = ("image_original", "image_database", "image_event_database", "image_event_alerts")
OUTPUT_FOLDERS = DATA_FOLDERS[1:]
CAMERAS, FRAMES = 2, 40
# Bounds for the README's client lines, which otherwise run until Ctrl-C (or send 150 frames).
BOUNDS = {
    "image_receiving.py": ["--cameras", str(CAMERAS), "--frames", str(FRAMES), "--fps", "0"],
    "image_analysis.py": ["--until-idle", "3"],
    "image_event_alert.py": ["--until-idle", "3"],
    "image_alert_delivery.py": ["--until-idle", "3"],
    "image_thumbnails.py": ["--until-idle", "3"],
}
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d [A-Z]+ ")
CLEAN_MARKER = ".kafka_cleanshutdown"  # Kafka writes it into its log folder when it shut down cleanly


@dataclass
class Run:
    """What every step needs: podman, the README's commands, the project copy and the host ports."""

    podman: Podman
    readme: Readme
    workdir: Path
    ports: dict[int, int]
    logs: Path
    notes: list[str] = field(default_factory=list)

    def readme_line(self, prefix: str, extra: list[str] | None = None, timeout: float = 600, check: bool = True,
                    extra_env: dict[str, str] | None = None, tty: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the README command that starts with prefix, as podman, in the project copy.

        tty runs it in a pseudo-terminal (script(1)), for commands that refuse to run without one.
        """
        line = bind_ports_to_loopback(to_podman(self.readme.find(prefix)), self.ports)
        if extra:
            line += " " + " ".join(extra)
        if tty:
            line = f"script --quiet --return --command {shlex.quote(line)} /dev/null"
        return self.podman.shell(line, self.workdir, timeout=timeout, check=check, extra_env=extra_env)


def wait_healthy(podman: Podman, container: str, timeout_s: float = 150) -> float:
    """Run the image's HEALTHCHECK until it passes (podman runs it on its own only under systemd)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if podman.run("healthcheck", "run", container, check=False, timeout=60).returncode == 0:
            return time.monotonic() - began
        state = podman.run("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state not in ("running", "created", "configured"):
            logs = podman.run("logs", container, check=False)
            said = tail(logs.stdout + logs.stderr)
            raise StepError(f"{container} is {state or 'gone'} before it became healthy\n{said}")
        time.sleep(1)
    raise StepError(f"{container} was not healthy within {timeout_s:.0f} s")


def build_image(run: Run) -> str:
    """The README's `docker build -t image-pipeline .`."""
    run.readme_line(f"docker build -t {IMAGE} .", timeout=900)
    return image_size(run.podman, IMAGE)


def image_size(podman: Podman, image: str) -> str:
    """The image's size as `podman images` prints it."""
    return podman.run("images", "--format", "{{.Size}}", image).stdout.strip()


def start_container(run: Run) -> str:
    """The README's `docker run -d ...`, then the health check until Kafka answers."""
    run.readme_line("docker run -d")
    return f"healthy after {wait_healthy(run.podman, CONTAINER):.0f} s"


def unwritable_folder_is_one_line(run: Run) -> str:
    """Bug 3: the project's folders, as a fresh clone by root has them, are not writable by uid 1000."""
    line = "docker exec -it pipeline_container python image_receiving.py"
    result = run.readme_line(line, BOUNDS["image_receiving.py"], check=False)
    # With -t the container's stdout and stderr share one terminal: the error is the line that is not a log line.
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and not LOG_LINE.match(line)]
    problems = []
    if result.returncode == 0:
        problems.append("the receiver wrote into a folder its uid cannot write")
    if "Traceback" in result.stdout + result.stderr:
        problems.append("a traceback instead of one line")
    if len(said) != 1 or "/pipeline/image_database" not in said[0] or "PIPELINE_UID" not in said[0]:
        problems.append("the error is not one line naming /pipeline/image_database and PIPELINE_UID")
    if problems:
        raise StepError("; ".join(problems) + f"\n{tail(result.stdout + result.stderr)}")
    return said[0].strip()


def hand_folders_to_image_user(run: Run) -> str:
    """Give the data folders to the image's user, as they are on a laptop whose user has that uid."""
    user = run.podman.run("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    run.podman.call(["chown", "-R", user, *DATA_FOLDERS], cwd=run.workdir)
    return f"chown -R {user}"


def run_clients(run: Run) -> str:
    """The README's topics line and each client's `docker exec` line, bounded; the web server last."""
    where = run.readme_line("docker exec -it pipeline_container bash", ["-c", "pwd"]).stdout.strip()
    if where != "/pipeline":
        raise StepError(f"a shell in the container starts in {where!r}, the README says /pipeline")
    run.readme_line("docker exec -it pipeline_container python -m image_pipeline.kafka.topics")
    web_line = ""
    for line in run.readme.client_lines():
        script = line.split("python ", 1)[1].split()[0]
        if script not in BOUNDS:
            web_line = line
            continue
        run.readme_line(line, BOUNDS[script], timeout=300)
    if not web_line:
        raise StepError("README.md has no `docker exec` line for the web server")
    return check_web(run, web_line)


def check_web(run: Run, line: str) -> str:
    """Start the README's web server line in the background; its page and an event's page answer 200."""
    out = (run.logs / "web-server.log").open("wb")
    server = subprocess.Popen(["bash", "-c", to_podman(line)], cwd=run.workdir, env=run.podman.env,
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{run.ports[5000]}"
        event = next(iter(sorted((run.workdir / "image_event_database").glob("*.json"))), None)
        if event is None:
            raise StepError("no event in image_event_database/ to open in the web viewer")
        event_id = json.loads(event.read_text())["event_id"]
        waited = wait_for_http(f"{base}/", server, timeout_s=60)
        status = http_status(f"{base}/events/{event_id}")
        if status != 200:
            raise StepError(f"GET /events/{event_id} answered {status}")
        return f"GET / 200 after {waited:.0f} s, GET /events/{event_id} 200"
    finally:
        server.terminate()  # the process in the container ends with the container
        server.wait(timeout=10)
        out.close()


def http_status(url: str) -> int:
    """The HTTP status of a GET, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_for_http(url: str, server: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds until url answers 200; a StepError if the server exits or never does."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if http_status(url) == 200:
            return time.monotonic() - began
        if server.poll() is not None:
            raise StepError(f"the web server's docker exec ended with {server.returncode} before {url} answered")
        time.sleep(0.5)
    raise StepError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def outputs(workdir: Path) -> dict[str, int]:
    """Counts of what the clients wrote into the project's folders on the host."""
    images = workdir / "image_database"
    return {
        "images": sum(1 for p in images.rglob("*.jpg") if not p.name.endswith((".gray.jpg", ".thumb.jpg"))),
        "thumbnails": sum(1 for _ in images.rglob("*.thumb.jpg")),
        "events": sum(1 for _ in (workdir / "image_event_database").glob("*.json")),
        "alerts": sum(1 for _ in (workdir / "image_event_alerts").glob("*.json")),
    }


def check_host_folders(run: Run) -> str:
    """The files are on the host, owned by the image's user, and the README's ls and docker cp show them."""
    counts = outputs(run.workdir)
    wanted = CAMERAS * FRAMES
    if counts["images"] != wanted or counts["thumbnails"] != wanted or not counts["events"] or not counts["alerts"]:
        raise StepError(f"expected {wanted} images and thumbnails, some events and alerts on the host, got {counts}")
    user = run.podman.run("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    owners = {f"{p.stat().st_uid}:{p.stat().st_gid}" for folder in OUTPUT_FOLDERS
              for p in (run.workdir / folder).rglob("*") if p.name != ".gitkeep"}
    if owners != {user}:
        raise StepError(f"the files on the host belong to {sorted(owners)}, not to the image's user {user}")
    listing = run.readme_line("ls image_database/").stdout
    if "cam-" not in listing:
        raise StepError(f"the README's ls shows no camera folder:\n{listing}")
    run.readme_line("docker cp pipeline_container:")
    copied = sum(1 for _ in (run.workdir / "alerts-copy").rglob("*.json"))
    if copied != counts["alerts"]:
        raise StepError(f"docker cp copied {copied} alerts, the folder has {counts['alerts']}")
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def host_client(run: Run) -> str:
    """The README's host client line: a receiver on the host through the published port."""
    if run.ports[9092] != 9092:
        run.notes.append("port 9092 was taken on this machine: the host-client step was skipped")
        return "skipped: 9092 is taken here, and the broker advertises localhost:9092"
    line = run.readme.find(".venv/bin/python image_receiving.py --bootstrap-servers localhost:9092")
    cmd = [sys.executable, *line.split()[1:], "--cameras", "1", "--frames", "3", "--fps", "0"]
    result = run.podman.call(cmd, cwd=run.workdir, timeout=120)
    return tail(result.stdout, 1)


def clean_folders(run: Run) -> str:
    """The README's ./clean_image_dirs.sh empties the output folders (their .gitkeep stays)."""
    run.readme_line("./clean_image_dirs.sh")
    left = [str(p.relative_to(run.workdir)) for folder in OUTPUT_FOLDERS
            for p in (run.workdir / folder).iterdir() if p.name != ".gitkeep"]
    if left:
        raise StepError(f"clean_image_dirs.sh left {left[:5]}")
    return "emptied"


def stop_container(run: Run) -> str:
    """The README's docker stop: Kafka exits on SIGTERM within the default 10 s and says it shut down cleanly."""
    began = time.monotonic()
    run.readme_line("docker stop pipeline_container")
    seconds = time.monotonic() - began
    code = run.podman.run("inspect", "--format", "{{.State.ExitCode}}", CONTAINER).stdout.strip()
    logs = run.podman.run("logs", CONTAINER, check=False)
    (run.logs / "pipeline_container.log").write_text(logs.stdout + logs.stderr, encoding="utf-8")
    # The JVM runs Kafka's shutdown hook on SIGTERM and then exits with 128 + 15; 137 would be SIGKILL.
    if code not in ("0", "143"):
        raise StepError(f"Kafka exited with {code} on docker stop\n{tail(logs.stdout + logs.stderr)}")
    # The launcher's log4j settings keep Kafka's shutdown lines out of the log: no ERROR is what it can say.
    said = logs.stdout + logs.stderr
    errors = [line for line in said.splitlines() if " ERROR " in line or "Exception" in line]
    if "Kafka Server started" not in said or errors:
        raise StepError(f"Kafka's log has no 'Kafka Server started' or has errors: {errors[:3]}")
    marker = run.podman.run("run", "--rm", "-v", "image-pipeline-kafka-data:/state", IMAGE, "sh", "-c",
                            f"ls /state/instances/9092/data/{CLEAN_MARKER}", check=False)
    if marker.returncode != 0:
        raise StepError(f"Kafka left no {CLEAN_MARKER} in its log folder: it did not shut down cleanly")
    return f"{seconds:.1f} s, exit code {code}, {CLEAN_MARKER} written"


def remove_container(run: Run) -> str:
    """The README's docker rm and docker volume rm."""
    run.readme_line("docker rm pipeline_container")
    run.readme_line("docker volume rm image-pipeline-kafka-data")
    return "removed"


def build_with_own_ids(run: Run) -> str:
    """Bug 2: the README's build with your own ids works when they exist in the image (root: 0:0; macOS: gid 20)."""
    own = run.podman.call(["bash", "-c", "echo $(id -u):$(id -g)"]).stdout.strip()
    run.readme_line(f"docker build -t {IMAGE} --build-arg", timeout=600)
    checked = [_ids_in_image(run, IMAGE, own)]
    macos = f"{IMAGE}-macos-ids"
    run.podman.run("build", "--format", "docker", "-t", macos, "--build-arg", "PIPELINE_UID=501",
                   "--build-arg", "PIPELINE_GID=20", str(run.workdir), timeout=600)
    try:
        checked.append(_ids_in_image(run, macos, "501:20"))
    finally:
        run.podman.run("rmi", macos, check=False)
    return ", ".join(checked)


def _ids_in_image(run: Run, image: str, wanted: str) -> str:
    probe = "echo $(id -u):$(id -g); test -w /pipeline/image_database && test -w /var/lib/pipeline-kafka"
    result = run.podman.run("run", "--rm", image, "sh", "-c", probe, check=False)
    if result.returncode != 0 or result.stdout.strip() != wanted:
        raise StepError(f"{image} runs as {result.stdout.strip() or '?'} (wanted {wanted}) or cannot write its"
                        f" folders\n{tail(result.stderr)}")
    return f"{wanted} ok"
