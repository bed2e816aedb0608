"""The alerter: matches events against subscriptions; one alert record per episode, kept in step with it.

The step is pure. Its decoder reads what an event message refers to (the event's record, for its
file paths, and the alert already written for it, if any), so the files on disk remain the state and
a restarted or second alerter never writes a second alert for one episode.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from image_pipeline import cli
from image_pipeline.config import Config, Subscription
from image_pipeline.delivery.routing import cooldown_file, delivery_sends, plan_deliveries
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.kafka.runner import RunOptions, RunStats, run_stage
from image_pipeline.messages import AlertMessage, EventMessage
from image_pipeline.model import EventType
from image_pipeline.records.events import alert_files, event_files, image_path, json_bytes, read_record, utc
from image_pipeline.stages.step import FileWrite, Outputs, Send, Source, StageSpec, StepBase
from image_pipeline.storage import safe_join
from image_pipeline.zones import zones_hit

logger = logging.getLogger(__name__)

SUMMARIES = {
    EventType.INTRUSION: "Someone entered the view of",
    EventType.TAMPER: "The lens was covered or blurred on",
    EventType.SCENE_CHANGE: "The view shifted (camera knocked?) on",
    EventType.LIGHTING_CHANGE: "The lighting changed suddenly on",
}


@dataclass(frozen=True)
class EventInput:
    """An event message with what it refers to on disk: the alerter's input."""

    event: EventMessage
    event_paths: dict[str, str]  # the event's files, relative to the data folder
    existing_alert: dict[str, Any] | None  # the alert record already written for this event
    cooldown: dict[str, Any] = field(default_factory=dict)  # the camera's cooldown state (delivery/routing.py)
    zones_hit: frozenset[str] = frozenset()  # zones holding a box's foot point on some frame (zones.py)


def alert_id_for(event_id: str) -> str:
    """A short, stable alert number derived from the event id."""
    return "A-" + hashlib.sha1(event_id.encode("utf-8")).hexdigest()[:8]


def alertees_for(subscriptions: tuple[Subscription, ...], event: EventMessage,
                 zones: frozenset[str] = frozenset()) -> list[dict[str, str]]:
    """Everyone whose subscription matches this event's camera, type, score and (for intrusions) zones."""
    return [
        {"name": s.name, "contact": s.contact or ", ".join(n.channel() for n in s.notify), "subscription": s.name}
        for s in subscriptions
        if s.matches(event.camera_id, event.event_type, event.score, zones)
    ]


def event_zones(cfg: Config, camera_id: str, record: dict[str, Any]) -> frozenset[str]:
    """The camera's zones that hold the foot point of some box of the event record, on any frame."""
    boxes = [tuple(int(v) for v in box) for frame in record.get("frames") or [] if isinstance(frame, dict)
             for box in frame.get("boxes") or [] if isinstance(box, list) and len(box) == 4]
    return zones_hit(cfg.areas, camera_id, boxes)  # type: ignore[arg-type]


def summary_of(event: EventMessage) -> str:
    """One sentence saying what happened where."""
    if event.event_type == EventType.OFFLINE:  # captured_at: when the outage began (stages/camera_monitor.py)
        since = time.strftime("%H:%M UTC on %Y-%m-%d", time.gmtime(event.captured_at))
        return f"Camera {event.camera_id} offline since {since}: no frame from it."
    what = SUMMARIES.get(EventType(event.event_type), f"A {event.event_type} event on")
    return f"{what} camera {event.camera_id} (score {event.score:.2f}), starting at image {event.first_image_id}."


def alert_record(cfg: Config, item: EventInput, alertees: list[dict[str, str]], now: float,
                 deliveries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The alert's JSON record: who is alerted, on which channels, what happened, where the images are."""
    event = item.event
    return {
        "alert_id": alert_id_for(event.event_id),
        "deliveries": deliveries or [],
        "event_id": event.event_id,
        "event_type": event.event_type,
        "camera_id": event.camera_id,
        "score": event.score,
        "alertees": alertees,
        "summary": summary_of(event),
        "first_image_id": event.first_image_id,
        "key_image_id": event.key_image_id,
        "captured_at": event.captured_at,
        "alerted_at": round(now, 3),
        "paths": {"alert": alert_files(cfg, event.event_id)[0], **item.event_paths},
    }


def alert_text(record: dict[str, Any]) -> str:
    """A human-readable version of an alert record."""
    people = "\n".join(f"  - {a['name']} <{a['contact']}>" for a in record["alertees"])
    paths = "\n".join(f"  {k:<15} {v}" for k, v in record["paths"].items())
    channels = "".join(f"  - {d['subscription']}: {d['channel']} {d['target']} ({d['status']})\n"
                       for d in record.get("deliveries", []))
    return (
        f"ALERT {record['alert_id']} for event {record['event_id']}\n"
        f"{record['summary']}\n\n"
        f"Alerted:\n{people}\n\n"
        f"Deliveries (status at the time of the alert):\n{channels or '  none'}\n"
        f"Captured at: {utc(record['captured_at'])}\n"
        f"Key frame:   {record['key_image_id']} (score {record['score']:.2f})\n"
        f"Files (relative to the data folder):\n{paths}\n"
    )


class AlertStep(StepBase[EventInput]):
    """Writes alert records for matched events, at most one per episode, and keeps its key frame current."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.announced: set[str] = set()  # alerts published by this process
        self.alerts_written = 0
        self.events_seen = 0

    def apply(self, item: EventInput, source: Source | None) -> Outputs:
        """Alert on a matching event once; later steps of the episode only refresh its key frame."""
        self.events_seen += 1
        existing = item.existing_alert
        if existing is not None:
            return self._refresh(item, existing)
        event = item.event
        alertees = alertees_for(self.cfg.subscriptions, event, item.zones_hit)
        if not alertees:
            return Outputs()
        matched = [s for s in self.cfg.subscriptions
                   if s.matches(event.camera_id, event.event_type, event.score, item.zones_hit)]
        deliveries, cooldown = plan_deliveries(matched, alert_id_for(event.event_id), event.event_id,
                                               event.event_type, event.captured_at, item.cooldown)
        record = alert_record(self.cfg, item, alertees, self.clock(), deliveries)
        self.alerts_written += 1
        logger.info("alert %s event=%s type=%s camera=%s alertees=%s", record["alert_id"], event.event_id,
                    event.event_type, event.camera_id, ", ".join(a["name"] for a in alertees))
        writes = self._writes(record)
        if cooldown != item.cooldown:
            # Before the alert record, which is written last: a redo finds this alert in the state.
            path = safe_join(self.cfg.data_dir, cooldown_file(self.cfg, event.camera_id))
            writes.insert(len(writes) - 1, FileWrite(path, json_bytes(cooldown)))
        return Outputs(writes, [self._announce(record), *delivery_sends(self.cfg, record)])

    def _refresh(self, item: EventInput, existing: dict[str, Any]) -> Outputs:
        """Point an existing alert at the episode's current key frame; announce it once per process."""
        event = item.event
        out = Outputs()
        if existing.get("key_image_id") != event.key_image_id or existing.get("score") != event.score:
            existing = {**existing, "key_image_id": event.key_image_id, "score": event.score,
                        "paths": {**existing.get("paths", {}), **item.event_paths}}
            out.writes.extend(self._writes(existing))
        if event.event_id not in self.announced:
            # Written before, maybe by a process that died before announcing it: announce once more.
            # The delivery worker skips deliveries whose status file says they are done.
            out.sends.append(self._announce(existing))
            out.sends.extend(delivery_sends(self.cfg, existing))
        return out

    def _writes(self, record: dict[str, Any]) -> list[FileWrite]:
        json_rel, text_rel = alert_files(self.cfg, record["event_id"])
        root = self.cfg.data_dir
        # The text first and the JSON last: the JSON's presence means the alert is complete.
        return [FileWrite(safe_join(root, text_rel), alert_text(record).encode("utf-8")),
                FileWrite(safe_join(root, json_rel), json_bytes(record))]

    def _announce(self, record: dict[str, Any]) -> Send:
        message = AlertMessage(
            alert_id=record["alert_id"], event_id=record["event_id"], event_type=record["event_type"],
            camera_id=record["camera_id"], score=record["score"], alertees=record["alertees"],
            record_path=record["paths"]["alert"], captured_at=record["captured_at"],
            alerted_at=record["alerted_at"],
        )
        self.announced.add(record["event_id"])
        return Send(self.cfg.topics.alerts.name, record["camera_id"].encode(), message.encode())


def event_decoder(cfg: Config) -> Callable[[bytes | None], EventInput]:
    """Parse an event message and read the event's and the alert's records it refers to."""
    def decode_record(value: bytes | None) -> EventInput:
        event = EventMessage.decode(value)
        files = event_files(cfg, event.event_id)
        paths = {"record": files.record, "text": files.text, "diff": files.diff, "annotated": files.annotated,
                 "key_image": image_path(cfg, event.camera_id, event.key_image_id)}
        recorded = read_record(safe_join(cfg.data_dir, files.record)) or {}
        paths.update({k: v for k, v in recorded.get("paths", {}).items() if isinstance(v, str)})
        existing = read_record(safe_join(cfg.data_dir, alert_files(cfg, event.event_id)[0]))
        cooldown = read_record(safe_join(cfg.data_dir, cooldown_file(cfg, event.camera_id))) or {}
        return EventInput(event, paths, existing, cooldown, event_zones(cfg, event.camera_id, recorded))
    return decode_record


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_event_alert.py."""
    return cli.consumer_main("image_event_alert.py", "Match events against subscriptions and write alerts.", argv, run)


def run(cfg: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Consume the events topic until stopped; returns the exit code."""
    cli.ensure_data_dirs(cfg)
    stop = stop or cli.stop_event_on_signals()
    ensure_topics(cfg)
    names = ", ".join(s.name for s in cfg.subscriptions) or "none"
    logger.info("alerting on topic %s as group %s; %d subscription(s): %s; alerts to %s",
                cfg.topics.events.name, cfg.groups.alerter, len(cfg.subscriptions), names, cfg.alerts_dir)
    step = AlertStep(cfg)
    spec = StageSpec("image-alert", cfg.groups.alerter, cfg.topics.events.name, event_decoder(cfg), step)
    options = RunOptions(until_idle=args.until_idle, max_messages=args.max_messages)
    run_stage(cfg, spec, stop, options, lambda stats: _progress(step, stats))
    return 0


def _progress(step: AlertStep, stats: RunStats) -> None:
    logger.info("read %d event messages; wrote %d alerts; dead-lettered %d",
                step.events_seen, step.alerts_written, stats.dead_lettered)
