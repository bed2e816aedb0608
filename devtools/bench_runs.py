"""The benchmark's pipeline runs: the real clients as separate processes on a real broker.

Each run gets its own topics, groups and data folder. Times come from the data itself: the images
topic's record timestamps (first image announced), the analyzer's own first/last timestamps (its
summary line), the event messages (capture to event record written) and the alert files (capture
to alert file written).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from devtools.runner import Client, PipelineProcesses, isolated_config
from image_pipeline.config import Config, TopicConfig
from image_pipeline.kafka.clients import ensure_topics, make_producer
from image_pipeline.kafka.reading import read_recent
from image_pipeline.sim.score import score_dirs

_RSS = re.compile(r"peak_rss_mb=([0-9.]+)")
_ANALYZED = re.compile(r"analyzed (\d+) images;.*first_at=([0-9.]+) last_at=([0-9.]+)")


class BenchError(RuntimeError):
    """A pipeline run that did not finish cleanly."""


@dataclass
class RunResult:
    """What one pipeline run measured."""

    images: int = 0
    first_announced: float = 0.0
    last_announced: float = 0.0
    first_analyzed: float = 0.0
    last_analyzed: float = 0.0
    per_analyzer: list[int] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    analyzer_cpu_ms: float = 0.0  # analyzer CPU per image, all instances, Kafka client included
    receiver_cpu_ms: float = 0.0
    event_latency_ms: list[float] = field(default_factory=list)
    alert_latency_ms: list[float] = field(default_factory=list)
    accuracy: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput_ips(self) -> float:
        """Images per second from the first image announced to the last image analyzed."""
        span = self.last_analyzed - self.first_announced
        return self.images / span if span > 0 else 0.0

    @property
    def offered_ips(self) -> float:
        """The rate the receiver actually announced at."""
        span = self.last_announced - self.first_announced
        return (self.images - 1) / span if span > 0 and self.images > 1 else 0.0

    @property
    def drain_ips(self) -> float:
        """Images per second from the first to the last image analyzed (backlog runs)."""
        span = self.last_analyzed - self.first_analyzed
        return self.images / span if span > 0 else 0.0


def proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of all reaped child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_assigned(clients: list[Client], timeout: float = 60.0) -> None:
    """Wait until every consumer logged its partition assignment (and the group settled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for client in clients:
            if client.process.poll() is not None:
                raise BenchError(f"{client.log_path.stem} exited early:\n{client.output()[-1500:]}")
        if all("assigned partitions" in c.output() for c in clients):
            time.sleep(1.0)  # a second member's join triggers one more rebalance right away
            return
        time.sleep(0.1)
    raise BenchError("consumers were not assigned partitions within a minute")


def receiver_args(cameras: int, frames: int, fps: float, size: tuple[int, int], seed: int) -> list[str]:
    """Command-line options of a synthesizing receiver; paced runs draw their frames beforehand.

    A real camera makes its frames in its own hardware; our simulator costs about 7 CPU ms a frame,
    which at a fixed offered load would compete with the pipeline it is measuring.
    """
    args = ["--cameras", str(cameras), "--frames", str(frames), "--fps", f"{fps:g}",
            "--size", f"{size[0]}x{size[1]}", "--seed", str(seed)]
    return [*args, "--prerender"] if fps > 0 else args


def _finish(procs: PipelineProcesses, result: RunResult, analyzers: list[Client], cpu_before: float,
            timeout: float) -> None:
    """Wait for the drain, read the analyzers' CPU, stop every client and parse their summaries."""
    if not procs.wait_drained(timeout=timeout, settle_s=0.5):
        raise BenchError(f"the pipeline did not drain within {timeout:.0f} s; logs in {procs.workdir}")
    cpu = sum(proc_cpu_s(c.process.pid) for c in analyzers)
    codes = procs.stop_all()
    if any(codes.values()):
        raise BenchError(f"client exit codes {codes}; logs in {procs.workdir}")
    result.analyzer_cpu_ms = 1000.0 * (cpu - cpu_before) / max(result.images, 1)
    firsts, lasts = [], []
    for client in procs.clients:
        text = client.output()
        rss = _RSS.findall(text)
        if rss:
            result.peak_rss_mb[client.role] = max(result.peak_rss_mb.get(client.role, 0.0), float(rss[-1]))
        if client.role == "analyzer":
            found = _ANALYZED.findall(text)
            if not found:
                raise BenchError(f"no summary line in {client.log_path}")
            count, first, last = found[-1]
            result.per_analyzer.append(int(count))
            if int(count):
                firsts.append(float(first))
                lasts.append(float(last))
    result.first_analyzed = min(firsts, default=0.0)
    result.last_analyzed = max(lasts, default=0.0)


def _announcements(cfg: Config, topic: str, result: RunResult) -> None:
    stamps = sorted(r.timestamp / 1000 for r in read_recent(cfg, topic, timeout_s=30))
    result.images = len(stamps)
    result.first_announced, result.last_announced = (stamps[0], stamps[-1]) if stamps else (0.0, 0.0)


def _latencies(cfg: Config, result: RunResult) -> None:
    for record in read_recent(cfg, cfg.topics.events.name, timeout_s=30):
        event = json.loads(record.value)
        result.event_latency_ms.append(1000.0 * (event["analyzed_at"] - event["captured_at"]))
    for path in cfg.alerts_dir.glob("*.json"):
        alert = json.loads(path.read_text(encoding="utf-8"))
        # alerted_at, not the file's mtime: an alert record is rewritten when its episode's key frame
        # moves later, and that rewrite is no alert's latency.
        result.alert_latency_ms.append(1000.0 * (alert["alerted_at"] - alert["captured_at"]))


def pipeline_run(base: Config, root: Path, cameras: int, frames: int, fps: float, size: tuple[int, int],
                 seed: int, partitions: int = 4) -> RunResult:
    """Analyzer and alerter up and assigned, then the receiver over cameras x frames; drain and measure."""
    cfg = isolated_config(base, root, image_partitions=partitions)
    result = RunResult()
    with PipelineProcesses(cfg, root) as procs:
        alerter = procs.start("alerter")
        analyzer = procs.start("analyzer")
        wait_assigned([alerter, analyzer])
        cpu_before = proc_cpu_s(analyzer.process.pid)
        before = children_cpu_s()
        receiver = procs.run("receiver", *receiver_args(cameras, frames, fps, size, seed), timeout=1200)
        if receiver.process.returncode != 0:
            raise BenchError(f"the receiver failed:\n{receiver.output()[-2000:]}")
        receiver_cpu = children_cpu_s() - before
        _announcements(cfg, cfg.topics.images.name, result)
        _finish(procs, result, [analyzer], cpu_before, timeout=600)
    result.receiver_cpu_ms = 1000.0 * receiver_cpu / max(result.images, 1)
    _latencies(cfg, result)
    result.accuracy = score_dirs(cfg.images_dir, cfg.events_dir).to_dict()
    return result


def backlog_run(base: Config, root: Path, analyzers: int, cameras: int, frames: int, size: tuple[int, int],
                seed: int, partitions: int = 4) -> RunResult:
    """Analyzer capacity: the images are stored first, then announced at once to `analyzers` instances."""
    cfg = isolated_config(base, root, image_partitions=partitions)
    staging = TopicConfig(f"{cfg.topics.images.name}-staging", partitions)
    ensure_topics(cfg, [staging])
    fill_cfg = cfg.replace(topics=dataclasses.replace(cfg.topics, images=staging))
    with PipelineProcesses(fill_cfg, root / "fill") as fill:
        receiver = fill.run("receiver", *receiver_args(cameras, frames, 0, size, seed), timeout=1200)
        if receiver.process.returncode != 0:
            raise BenchError(f"the receiver failed:\n{receiver.output()[-2000:]}")
    staged = read_recent(fill_cfg, staging.name, timeout_s=60)
    result = RunResult()
    with PipelineProcesses(cfg, root) as procs:
        alerter = procs.start("alerter")
        instances = [procs.start("analyzer") for _ in range(analyzers)]
        wait_assigned([alerter, *instances])
        cpu_before = sum(proc_cpu_s(c.process.pid) for c in instances)
        producer: KafkaProducer = make_producer(cfg, "bench-announcer")
        for record in staged:
            producer.send(cfg.topics.images.name, key=record.key, value=record.value)
        producer.flush()
        producer.close()
        result.images = len(staged)
        _finish(procs, result, instances, cpu_before, timeout=600)
    return result


def summary(values: list[float]) -> dict[str, Any]:
    """p50, p95, p99, max and the sample count of latencies in ms."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)

    def pct(q: float) -> float:
        # Nearest rank: the smallest sample with at least q of the samples at or below it.
        return round(ordered[min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))], 1)

    return {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": round(ordered[-1], 1), "n": len(ordered)}
