"""make demo: run the whole pipeline once, as separate processes, and print a summary."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

from devtools.runner import PipelineProcesses, count_outputs
from image_pipeline import cli
from image_pipeline.config import Config, TopicConfig, TopicsConfig
from image_pipeline.kafka import broker
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.kafka.reading import topic_size
from image_pipeline.sim.score import score_dirs


def _log(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def ensure_broker(cfg: Config) -> broker.Instance | None:
    """Start a local broker on the configured port unless one answers; returns it if we started it."""
    if broker.broker_answers(cfg.kafka.bootstrap_servers):
        _log(f"using the Kafka broker at {cfg.kafka.bootstrap_servers}")
        return None
    host, _, port = cfg.kafka.bootstrap_servers.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise broker.BrokerError(f"no broker answers at {cfg.kafka.bootstrap_servers}, and it is not local")
    inst = broker.instance_for(int(port))
    _log(f"no broker answers at {cfg.kafka.bootstrap_servers}; starting one (log: {inst.log_file})")
    began = time.monotonic()
    broker.start(inst)
    _log(f"Kafka {broker.KAFKA_VERSION} ready in {time.monotonic() - began:.1f} s")
    return inst


def demo_config(cfg: Config) -> Config:
    """The config with topics and groups of this run alone, so earlier runs cannot interfere."""
    tag = time.strftime("demo-%Y%m%d-%H%M%S")
    t = cfg.topics
    topics = TopicsConfig(
        images=TopicConfig(f"{t.images.name}-{tag}", t.images.partitions),
        events=TopicConfig(f"{t.events.name}-{tag}", t.events.partitions),
        alerts=TopicConfig(f"{t.alerts.name}-{tag}", t.alerts.partitions),
        dead_letter=TopicConfig(f"{t.dead_letter.name}-{tag}", t.dead_letter.partitions),
        errors=TopicConfig(f"{t.errors.name}-{tag}", t.errors.partitions),
    )
    groups = dataclasses.replace(
        cfg.groups, analyzer=f"{cfg.groups.analyzer}-{tag}", alerter=f"{cfg.groups.alerter}-{tag}"
    )
    return cfg.replace(topics=topics, groups=groups)


def empty_data_folders(cfg: Config) -> None:
    """What clean_image_dirs.sh does: empty the three output folders, keep .gitkeep."""
    for folder in (cfg.images_dir, cfg.events_dir, cfg.alerts_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for child in folder.iterdir():
            if child.name == ".gitkeep":
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    _log(f"emptied {cfg.images_dir.name}/, {cfg.events_dir.name}/ and {cfg.alerts_dir.name}/")


def run_demo(cfg: Config, cameras: int, frames: int, seed: int) -> int:
    """Receiver, analyzer and alerter as separate processes on one broker; then the summary."""
    empty_data_folders(cfg)
    ensure_topics(cfg)
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-demo-"))
    with PipelineProcesses(cfg, workdir) as procs:
        procs.start("alerter")
        procs.start("analyzer")
        _log(f"analyzer and alerter started; logs in {workdir}")
        began = time.monotonic()
        receiver = procs.run("receiver", "--cameras", str(cameras), "--frames", str(frames),
                             "--fps", "0", "--seed", str(seed))
        if receiver.process.returncode != 0:
            _log("the receiver failed:\n" + receiver.output()[-2000:])
            return 1
        _log(f"receiver stored and announced {cameras * frames} images; waiting for analysis and alerts")
        if not procs.wait_drained(timeout=600, settle_s=1.0):
            _log("the pipeline did not drain within 10 minutes; see the logs in " + str(workdir))
            return 1
        elapsed = (procs.drained_at or time.monotonic()) - began
        codes = procs.stop_all()
    print_summary(cfg, elapsed, codes)
    return 0 if all(code == 0 for code in codes.values()) else 1


def print_summary(cfg: Config, elapsed: float, codes: dict[str, int]) -> None:
    """Images, events by type, alerts, dead letters, the score table and the rate."""
    counts = count_outputs(cfg)
    report = score_dirs(cfg.images_dir, cfg.events_dir)
    dead = topic_size(cfg, cfg.topics.dead_letter.name)
    print()
    print("=" * 64)
    print(f"Images stored and analyzed: {counts['images']}")
    print("Events by type:             " + (", ".join(f"{k}={v}" for k, v in counts["events"].items()) or "none"))
    print(f"Alerts written:             {counts['alerts']}")
    print(f"Dead letters:               {dead}")
    print(f"Throughput:                 {counts['images'] / elapsed:.1f} images/s "
          f"({counts['images']} images in {elapsed:.1f} s, receiver start to last image analyzed and alerted)")
    print(f"Client exit codes:          {codes}")
    print()
    print(report.format_table())
    print("=" * 64)
    print(f"Outputs: {cfg.images_dir}, {cfg.events_dir}, {cfg.alerts_dir}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m devtools.demo (make demo)."""
    parser = cli.base_parser("make demo", "Run the whole pipeline once and print a summary.")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    cli.setup_logging("WARNING")
    return cli.run_main("demo", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    cfg = cli.load_from_args(args)
    try:
        started = ensure_broker(cfg)
    except broker.BrokerError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    try:
        return run_demo(demo_config(cfg), args.cameras, args.frames, args.seed)
    finally:
        if started is not None:
            broker.stop(started)
            _log("stopped the broker the demo started")


if __name__ == "__main__":
    sys.exit(main())
