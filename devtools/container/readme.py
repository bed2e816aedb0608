"""The README's Docker commands, read from the README itself and turned into the podman commands the test runs.

The test runs what the README says, so that a command edited there is tested as edited. The
changes it makes, and only these: `docker` becomes `podman`, `docker compose` becomes Debian's
`docker-compose` (v1, talking to podman's Docker-compatible socket), `build` gets `--format docker`
(podman's default OCI format drops HEALTHCHECK) and published ports are bound to 127.0.0.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SECTION = "## Docker"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"(^|\s)#.*$")
# The one command the section gives inline rather than in a block: a client on the host.
HOST_CLIENT = re.compile(r"`(\.venv/bin/python [^`]+)`")
PUBLISH = re.compile(r"-p (\d+):(\d+)")


def docker_section(text: str) -> str:
    """The README's Docker section, up to the next second-level heading."""
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + len(SECTION) + 2)
    return text[start:] if end < 0 else text[start:end]


def commands(section: str) -> list[str]:
    """The shell commands of the section's bash blocks: continuation lines joined, comments dropped."""
    found: list[str] = []
    for block in FENCE.findall(section):
        pending = ""
        for raw in block.splitlines():
            line = COMMENT.sub("", raw).strip() if not raw.lstrip().startswith("#") else ""
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            full = (pending + line).strip()
            pending = ""
            if full:
                found.append(full)
    return found


@dataclass(frozen=True)
class Readme:
    """The README's Docker commands."""

    lines: list[str]

    @classmethod
    def load(cls, path: Path) -> Readme:
        """Read the commands of the README at path."""
        section = docker_section(path.read_text(encoding="utf-8"))
        return cls(commands(section) + HOST_CLIENT.findall(section))

    def find(self, prefix: str) -> str:
        """The one command that starts with prefix; a ValueError when the README has none or several."""
        matches = [line for line in self.lines if line.startswith(prefix)]
        if len(matches) != 1:
            raise ValueError(f"README.md, section Docker: expected one command starting with {prefix!r},"
                             f" found {len(matches)}")
        return matches[0]

    def client_lines(self) -> list[str]:
        """The `docker exec` lines that start a client script, in the README's order."""
        return [line for line in self.lines if re.match(r"docker exec -it pipeline_container python \S+\.py", line)]


def to_podman(line: str) -> str:
    """A README command as run here: podman for docker, docker-compose for docker compose."""
    line = re.sub(r"(^|\s)docker compose(?=\s|$)", r"\1docker-compose", line)
    line = re.sub(r"(^|\s)docker(?=\s)", r"\1podman", line)
    return re.sub(r"(^|\s)podman build(?=\s)", r"\1podman build --format docker", line)


def bind_ports_to_loopback(line: str, host_ports: dict[int, int]) -> str:
    """Publish on 127.0.0.1 only, at the host port chosen for each container port."""
    def publish(match: re.Match[str]) -> str:
        container = int(match.group(2))
        return f"-p 127.0.0.1:{host_ports.get(container, int(match.group(1)))}:{container}"

    return PUBLISH.sub(publish, line)


def compose_ports_to_loopback(text: str, host_ports: dict[int, int]) -> str:
    """docker-compose.yml's `- "H:C"` port entries bound to 127.0.0.1 at the chosen host ports."""
    def publish(match: re.Match[str]) -> str:
        container = int(match.group(3))
        return f'{match.group(1)}"127.0.0.1:{host_ports.get(container, int(match.group(2)))}:{container}"'

    result, count = re.subn(r'^(\s*- )"(\d+):(\d+)"$', publish, text, flags=re.MULTILINE)
    if count == 0:
        raise ValueError('docker-compose.yml publishes no port as - "HOST:CONTAINER"')
    return result
