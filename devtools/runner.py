"""Run the pipeline's clients as separate processes, for the demo, the benchmark and the tests."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import yaml

from image_pipeline.config import PROJECT_ROOT, Config, TopicConfig, TopicsConfig
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.kafka.reading import group_lag

SCRIPTS = {
    "receiver": "image_receiving.py",
    "analyzer": "image_analysis.py",
    "alerter": "image_event_alert.py",
    "thumbnails": "image_thumbnails.py",
    "delivery": "image_alert_delivery.py",
}


def isolated_config(cfg: Config, root: Path, image_partitions: int = 2, tag: str | None = None) -> Config:
    """The config with topics, groups and data folders of one run alone (tests, benchmark); topics created."""
    tag = tag or uuid.uuid4().hex[:8]
    topics = TopicsConfig(
        images=TopicConfig(f"images-{tag}", image_partitions),
        events=TopicConfig(f"events-{tag}", 2),
        alerts=TopicConfig(f"alerts-{tag}", 1),
        dead_letter=TopicConfig(f"dlq-{tag}", 1),
        errors=TopicConfig(f"errors-{tag}", 1),
        camera_status=TopicConfig(f"camera-status-{tag}", 1),
        deliveries=TopicConfig(f"deliveries-{tag}", 2),
    )
    groups = dataclasses.replace(
        cfg.groups, analyzer=f"analysis-{tag}", alerter=f"alert-{tag}", thumbnails=f"thumbs-{tag}",
        delivery=f"delivery-{tag}", camera_monitor=f"monitor-{tag}",
    )
    for folder in (cfg.paths.images, cfg.paths.events, cfg.paths.alerts):
        (root / folder).mkdir(parents=True, exist_ok=True)
    out = cfg.with_overrides(data_dir=str(root)).replace(topics=topics, groups=groups)
    ensure_topics(out)
    return out


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """A Config as the mapping config.yaml holds, with the data folder made absolute."""
    raw = dataclasses.asdict(cfg)
    raw.pop("base_dir", None)
    raw["paths"]["data_dir"] = str(cfg.data_dir)
    raw["paths"]["originals"] = str(cfg.originals_dir)
    raw["cameras"] = list(raw["cameras"])
    raw["subscriptions"] = [
        {**s, "cameras": list(s["cameras"]), "event_types": list(s["event_types"]), "notify": list(s["notify"])}
        for s in raw["subscriptions"]
    ]
    return raw


def write_config(cfg: Config, path: Path) -> Path:
    """Write a Config as YAML that load_config reads back to the same values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path


@dataclasses.dataclass
class Client:
    """One running client process."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def output(self) -> str:
        """Everything the client printed so far."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class PipelineProcesses:
    """Starts clients with one config file, waits for them to drain, and stops them."""

    def __init__(self, cfg: Config, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.config_path = write_config(cfg, workdir / "config.yaml")
        self.env = dict(env or os.environ)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the config file says where Kafka is
        self.env.pop("PIPELINE_DATA_DIR", None)
        self.clients: list[Client] = []
        self.drained_at: float | None = None  # time.monotonic() when the last wait_drained saw no lag

    def command(self, role: str, *args: str) -> list[str]:
        """The command line of one client."""
        return [sys.executable, str(PROJECT_ROOT / SCRIPTS[role]), "--config", str(self.config_path), *args]

    def start(self, role: str, *args: str, name: str | None = None) -> Client:
        """Start a client in the background; its output goes to <workdir>/<name>.log."""
        name = name or f"{role}-{sum(c.role == role for c in self.clients)}"
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            self.command(role, *args), cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        client = Client(role, process, log_path, log)
        self.clients.append(client)
        return client

    def run(self, role: str, *args: str, timeout: float = 600) -> Client:
        """Run a client to completion."""
        client = self.start(role, *args)
        client.process.wait(timeout=timeout)
        return client

    def wait_drained(self, timeout: float = 180, settle_s: float = 2.0) -> bool:
        """Wait until the analyzer and the alerter have committed everything published so far."""
        deadline = time.monotonic() + timeout
        clean_since: float | None = None
        while time.monotonic() < deadline:
            lag = group_lag(self.cfg, self.cfg.groups.analyzer, self.cfg.topics.images.name)
            lag += group_lag(self.cfg, self.cfg.groups.alerter, self.cfg.topics.events.name)
            if lag == 0:
                clean_since = clean_since or time.monotonic()
                if time.monotonic() - clean_since >= settle_s:
                    self.drained_at = clean_since
                    return True
            else:
                clean_since = None
            time.sleep(0.5)
        return False

    def stop(self, client: Client, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal a client and wait for it; returns its exit code."""
        if client.process.poll() is None:
            client.process.send_signal(sig)
        code = client.process.wait(timeout=timeout)
        client.log.close()
        return code

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every running client; their exit codes by log name."""
        codes = {}
        for client in self.clients:
            codes[client.log_path.stem] = self.stop(client)
        return codes

    def __enter__(self) -> PipelineProcesses:
        return self

    def __exit__(self, *_exc: object) -> None:
        for client in self.clients:
            if client.process.poll() is None:
                client.process.kill()
                client.process.wait()
            client.log.close()


def count_outputs(cfg: Config) -> dict[str, Any]:
    """Images, events by type and alerts found in the data folders."""
    images = sum(1 for p in cfg.images_dir.rglob("*") if p.suffix in (".jpg", ".png") and p.name.count(".") == 1)
    events: dict[str, int] = {}
    for path in cfg.events_dir.glob("*.json"):
        kind = json.loads(path.read_text(encoding="utf-8")).get("event_type", "?")
        events[kind] = events.get(kind, 0) + 1
    alerts = sum(1 for _ in cfg.alerts_dir.glob("*.json"))
    return {"images": images, "events": dict(sorted(events.items())), "alerts": alerts}
