"""The alerter: matches events against subscriptions and writes one alert record per episode."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer

from image_pipeline import cli
from image_pipeline.config import Config, Subscription
from image_pipeline.kafka.clients import (
    LoopOptions,
    LoopStats,
    ensure_topics,
    run_consumer_stage,
)
from image_pipeline.messages import AlertMessage, EventMessage
from image_pipeline.records.imagedb import stored_relpath
from image_pipeline.storage import atomic_write_json, atomic_write_text, check_id, safe_join

logger = logging.getLogger(__name__)


def alert_id_for(event_id: str) -> str:
    """A short, stable alert number derived from the event id."""
    return "A-" + hashlib.sha1(event_id.encode("utf-8")).hexdigest()[:8]


def alertees_for(subscriptions: tuple[Subscription, ...], event: EventMessage) -> list[dict[str, str]]:
    """Everyone whose subscription matches this event's camera, type and score."""
    return [
        {"name": s.name, "contact": s.contact, "subscription": s.name}
        for s in subscriptions
        if s.matches(event.camera_id, event.event_type, event.score)
    ]


def summary_of(event: EventMessage) -> str:
    """One sentence saying what happened where."""
    what = {
        "intrusion": "Someone entered the view of",
        "tamper": "The lens was covered or blurred on",
        "scene_change": "The view shifted (camera knocked?) on",
        "lighting_change": "The lighting changed suddenly on",
    }.get(event.event_type, f"A {event.event_type} event on")
    return f"{what} camera {event.camera_id} (score {event.score:.2f}), starting at image {event.first_image_id}."


def event_files(cfg: Config, event: EventMessage) -> dict[str, str]:
    """Where the event's record and images are, as its record on disk says."""
    event_id = check_id(event.event_id, "event_id")
    events, images = cfg.paths.events, cfg.paths.images
    paths = {
        "record": f"{events}/{event_id}.json",
        "text": f"{events}/{event_id}.txt",
        "diff": f"{events}/{event_id}_diff.jpg",
        "annotated": f"{events}/{event_id}_annotated.jpg",
        "key_image": f"{images}/{stored_relpath(cfg.images_dir, event.camera_id, event.key_image_id)}",
    }
    try:
        recorded = json.loads(safe_join(cfg.events_dir, f"{event_id}.json").read_text(encoding="utf-8"))
        paths.update({k: v for k, v in recorded.get("paths", {}).items() if isinstance(v, str)})
    except (OSError, ValueError):
        pass  # the record is written before the message, but the message alone is enough
    return paths


def alert_record(cfg: Config, event: EventMessage, alertees: list[dict[str, str]]) -> dict[str, Any]:
    """The alert's JSON record: who is alerted, what happened, where the images are."""
    event_id = check_id(event.event_id, "event_id")
    camera = check_id(event.camera_id, "camera_id")
    return {
        "alert_id": alert_id_for(event_id),
        "event_id": event_id,
        "event_type": event.event_type,
        "camera_id": camera,
        "score": event.score,
        "alertees": alertees,
        "summary": summary_of(event),
        "first_image_id": event.first_image_id,
        "key_image_id": event.key_image_id,
        "captured_at": event.captured_at,
        "alerted_at": round(time.time(), 3),
        "paths": {"alert": f"{cfg.paths.alerts}/{event_id}.json", **event_files(cfg, event)},
    }


def alert_text(record: dict[str, Any]) -> str:
    """A human-readable version of an alert record."""
    people = "\n".join(f"  - {a['name']} <{a['contact']}>" for a in record["alertees"])
    paths = "\n".join(f"  {k:<15} {v}" for k, v in record["paths"].items())
    return (
        f"ALERT {record['alert_id']} for event {record['event_id']}\n"
        f"{record['summary']}\n\n"
        f"Alerted:\n{people}\n\n"
        f"Captured at: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(record['captured_at']))}\n"
        f"Files (relative to the data folder):\n{paths}\n"
    )


class Alerter:
    """Writes alert records for matched events, at most one per episode."""

    def __init__(self, cfg: Config, producer: KafkaProducer) -> None:
        self.cfg = cfg
        self.producer = producer
        self.announced: set[str] = set()  # alerts published by this process
        self.alerts_written = 0
        self.events_seen = 0

    def handle(self, record: Any) -> None:
        """Process one event message."""
        self.consider(EventMessage.decode(record.value))

    def flush(self) -> None:
        """Wait until every alert message is acknowledged."""
        self.producer.flush()

    def partitions_revoked(self, partitions: list[Any]) -> None:
        """Nothing to forget: alert files on disk are the state."""

    def consider(self, event: EventMessage) -> dict[str, Any] | None:
        """Write and announce an alert if the event is alertable and has none yet."""
        self.events_seen += 1
        event_id = check_id(event.event_id, "event_id")
        json_path = safe_join(self.cfg.alerts_dir, f"{event_id}.json")
        if json_path.exists():
            # Written before (maybe by a process that died before announcing it): announce once more.
            if event_id not in self.announced:
                self._announce_existing(json_path, event)
            return None
        alertees = alertees_for(self.cfg.subscriptions, event)
        if not alertees:
            return None
        record = alert_record(self.cfg, event, alertees)
        # The text first and the JSON last: the JSON's presence means the alert is complete.
        atomic_write_text(safe_join(self.cfg.alerts_dir, f"{event_id}.txt"), alert_text(record))
        atomic_write_json(json_path, record)
        self.alerts_written += 1
        self._announce(record, event)
        logger.info("alert %s event=%s type=%s camera=%s alertees=%s", record["alert_id"], event_id,
                    event.event_type, event.camera_id, ", ".join(a["name"] for a in alertees))
        return record

    def _announce_existing(self, json_path: Any, event: EventMessage) -> None:
        self._announce(json.loads(json_path.read_text(encoding="utf-8")), event)

    def _announce(self, record: dict[str, Any], event: EventMessage) -> None:
        message = AlertMessage(
            alert_id=record["alert_id"], event_id=record["event_id"], event_type=record["event_type"],
            camera_id=record["camera_id"], score=record["score"], alertees=record["alertees"],
            record_path=record["paths"]["alert"], captured_at=record["captured_at"],
            alerted_at=record["alerted_at"],
        )
        self.producer.send(self.cfg.topics.alerts.name, key=event.camera_id.encode(), value=message.encode())
        self.announced.add(record["event_id"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The alerter's options."""
    parser = cli.base_parser("image_event_alert.py", "Match events against subscriptions and write alerts.")
    cli.add_loop_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_event_alert.py."""
    args = parse_args(argv)
    cli.setup_logging(args.log_level)
    return cli.run_main("image_event_alert.py", lambda: run(cli.load_from_args(args), args))


def run(cfg: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Consume the events topic until stopped; returns the exit code."""
    cli.ensure_data_dirs(cfg)
    stop = stop or cli.stop_event_on_signals()
    ensure_topics(cfg)
    names = ", ".join(s.name for s in cfg.subscriptions) or "none"
    logger.info("alerting on topic %s as group %s; %d subscription(s): %s; alerts to %s",
                cfg.topics.events.name, cfg.groups.alerter, len(cfg.subscriptions), names, cfg.alerts_dir)
    run_consumer_stage(
        cfg, "image-alert", cfg.groups.alerter, cfg.topics.events.name,
        lambda producer: Alerter(cfg, producer), stop,
        LoopOptions(until_idle=args.until_idle, max_messages=args.max_messages),
        _progress,
    )
    return 0


def _progress(alerter: Alerter, stats: LoopStats) -> None:
    logger.info("read %d event messages; wrote %d alerts; dead-lettered %d",
                alerter.events_seen, alerter.alerts_written, stats.dead_lettered)
