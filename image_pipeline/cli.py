"""Shared command-line plumbing: common options, logging, signals and one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from image_pipeline.config import Config, ConfigError, load_config
from image_pipeline.errors import FatalError


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, not the usage text plus the error."""

    def error(self, message: str) -> NoReturn:
        """Print 'prog: error: message (see --help)' and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every client shares."""
    parser = OneLineErrorParser(prog=prog, description=description)
    parser.add_argument("--config", default=None, help="config file (default: config.yaml of the project)")
    parser.add_argument(
        "--bootstrap-servers", default=None,
        help="Kafka address host:port (default: config, or $KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument("--data-dir", default=None, help="folder holding the data folders (default: project)")
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log detail (default INFO)",
    )
    return parser


def add_loop_options(parser: argparse.ArgumentParser) -> None:
    """Options of clients that consume: --until-idle and --max-messages."""
    parser.add_argument(
        "--until-idle", type=float, default=None, metavar="SECONDS",
        help="exit after this many seconds without a message (default: run until Ctrl-C)",
    )
    parser.add_argument("--max-messages", type=int, default=None, help="exit after this many messages")


def consumer_main(prog: str, description: str, argv: list[str] | None,
                  run: Callable[[Config, argparse.Namespace], int]) -> int:
    """The entry point every consuming client shares: options, logging, config, one-line errors."""
    parser = base_parser(prog, description)
    add_loop_options(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return run_main(prog, lambda: run(load_from_args(args), args))


def setup_logging(level: str) -> None:
    """One handler on the root logger; quiet the Kafka client's own chatter."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    logging.getLogger("kafka").setLevel(logging.CRITICAL if level != "DEBUG" else logging.INFO)


def load_from_args(args: argparse.Namespace) -> Config:
    """Config file, then environment, then command-line overrides."""
    cfg = load_config(args.config)
    return cfg.with_overrides(bootstrap_servers=args.bootstrap_servers, data_dir=args.data_dir)


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM; handlers only set the flag."""
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s; finishing the current message", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return stop


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM first: Linux carries ru_maxrss across exec, so a client started by a big parent (the
    benchmark) would report the parent's peak. ru_maxrss (KiB on Linux) is the fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run a client's body, turning expected failures into one-line errors and exit codes."""
    code = _run_body(prog, body)
    if code != 2:  # a usage error stays one line
        logging.getLogger(prog).info("exiting with code %d; peak_rss_mb=%.1f", code, peak_rss_mb())
    return code


def _run_body(prog: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        return 2
    except (KafkaTimeoutError, KafkaConnectionError) as exc:
        print(f"{prog}: error: no Kafka broker answered ({exc}); is it running? "
              "(python -m image_pipeline.kafka.broker start)", file=sys.stderr)
        return 1
    except FatalError as exc:
        print(f"{prog}: fatal: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"{prog}: Kafka error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def ensure_data_dirs(cfg: Config) -> None:
    """Create the data folders if they are missing; a FatalError naming the folder if one is not writable.

    A folder bind-mounted into the container belongs to whoever cloned the project, often not the
    image's uid 1000. The check writes a file rather than asking os.access, which says yes to root
    even on a read-only mount.
    """
    for folder in (Path(cfg.images_dir), Path(cfg.events_dir), Path(cfg.alerts_dir)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as exc:
            raise FatalError(
                f"cannot write to the data folder {folder} ({exc.strerror or type(exc).__name__},"
                f" as uid {os.getuid()} gid {os.getgid()}); make it writable for that user, or in Docker"
                " build the image with your own ids: --build-arg PIPELINE_UID=$(id -u)"
                " --build-arg PIPELINE_GID=$(id -g) (README.md, Docker)"
            ) from None
