"""The camera monitor: camera-status in, `offline` events out, on the normal event path to the alerter.

Why here, as a small step over the camera-status topic, and not in the receiver or the analyzer's
frame step: the state it needs is one line per camera (up or down since when, and the open event),
all of it carried by status messages. The receiver knows when a stream drops, but an event record
and an alert belong downstream, and a receiver that dies says nothing at all: a monitor that stops
hearing heartbeats still notices. The analyzer's frame step cannot see a camera that sends no frame.
Its clock is the capture clock of status messages (reported_at) per partition, moved on by the
runner's verified idle time when the topic is quiet, like the analyzer's.

The event is `<camera>-offline-<epoch seconds the outage began>`: start once the camera has been down
for its offline_after_s, end when frames come back (or the camera is ended on purpose).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from image_pipeline.config import Config
from image_pipeline.kafka.runner import RunOptions, run_stage
from image_pipeline.messages import CameraStatus, EventMessage
from image_pipeline.model import EventType
from image_pipeline.records.events import event_files, image_path, json_bytes, utc
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.stages.step import FileWrite, Outputs, Send, Source, StageSpec, StepBase
from image_pipeline.storage import safe_join

logger = logging.getLogger(__name__)
STALE_GRACE_S = 15.0  # three receiver heartbeats: silence beyond offline_after_s + this is a dead receiver
DOWN_STATES = ("connecting", "offline")


@dataclass
class Watch:
    """What the monitor knows about one camera."""

    partition: int | None
    status: CameraStatus
    down_since: float | None = None  # when the current outage began; None while up or ended
    reason: str = ""
    event: dict[str, Any] | None = None  # the open offline event's record


class CameraMonitorStep(StepBase[CameraStatus]):
    """Status messages in; offline event records and event messages out; no Kafka, no disk."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.cameras: dict[str, Watch] = {}
        self.clocks: dict[int | None, float] = {}
        self.events_started = 0

    def apply(self, item: CameraStatus, source: Source | None) -> Outputs:
        """Note a camera's status; close its offline event when it is up again; open ones that are due."""
        partition = source.partition if source else None
        watch = self.cameras.get(item.camera_id)
        if watch is None:
            watch = self.cameras[item.camera_id] = Watch(partition, item)
        watch.partition, watch.status = partition, item
        out = Outputs()
        if item.state in DOWN_STATES:
            if watch.down_since is None:
                watch.down_since, watch.reason = item.since, item.reason
        else:
            if watch.event is not None:
                back_at = item.last_frame_at if item.state == "online" and item.last_frame_at else item.reported_at
                out.add(self._close(watch, back_at, "frames came back" if item.state == "online" else item.reason))
            watch.down_since = None
        return out.add(self._tick(partition, item.reported_at))

    def idle(self, partition: int, idle_s: float) -> Outputs:
        """The topic is quiet: move the partition's clock on by the verified idle time."""
        latest = max((w.status.reported_at for w in self.cameras.values() if w.partition == partition), default=None)
        return Outputs() if latest is None else self._tick(partition, latest + idle_s)

    def wants_idle_ticks(self) -> bool:
        """A camera can become due while nothing is sent: one that is down, or silent while up."""
        return any(w.event is None and w.status.state != "ended" for w in self.cameras.values())

    def revoke(self, partitions: set[int]) -> None:
        """Forget cameras of partitions another monitor owns now; it rebuilds them from their next status."""
        for camera_id in [c for c, w in self.cameras.items() if w.partition in partitions]:
            del self.cameras[camera_id]
        for partition in partitions:
            self.clocks.pop(partition, None)

    def _tick(self, partition: int | None, at: float) -> Outputs:
        clock = self.clocks[partition] = max(self.clocks.get(partition, at), at)
        out = Outputs()
        for watch in self.cameras.values():
            if watch.partition != partition or watch.event is not None:
                continue
            status = watch.status
            silent = clock - status.reported_at
            if watch.down_since is None and status.state == "online" and \
                    silent >= status.offline_after_s + STALE_GRACE_S:
                watch.down_since, watch.reason = status.reported_at, f"no status from the receiver for {silent:.0f} s"
            if watch.down_since is not None and clock - watch.down_since >= status.offline_after_s:
                out.add(self._open(watch))
        return out

    def _open(self, watch: Watch) -> Outputs:
        status, since = watch.status, watch.down_since or watch.status.since
        event_id = f"{status.camera_id}-{EventType.OFFLINE}-{int(since)}"
        image_id = status.last_image_id or image_id_for(status.camera_id, 0)
        watch.event = offline_record(self.cfg, event_id, status.camera_id, image_id, since, watch.reason)
        self.events_started += 1
        logger.warning("camera=%s offline since %s (%s): event %s", status.camera_id, utc(since), watch.reason,
                       event_id)
        return self._emit(watch.event, "start")

    def _close(self, watch: Watch, back_at: float, why: str) -> Outputs:
        record = {**(watch.event or {}), "status": "closed", "ended_at": back_at, "online_again_at": back_at}
        watch.event = None
        logger.info("camera=%s back at %s (%s): event %s ends", record["camera_id"], utc(back_at), why,
                    record["event_id"])
        return self._emit(record, "end")

    def _emit(self, record: dict[str, Any], phase: str) -> Outputs:
        files = event_files(self.cfg, record["event_id"])
        root = self.cfg.data_dir
        writes = [FileWrite(safe_join(root, files.text), offline_text(record).encode("utf-8")),
                  FileWrite(safe_join(root, files.record), json_bytes(record))]
        image_id = record["key_image_id"]
        event = EventMessage(
            phase=phase, event_id=record["event_id"], event_type=EventType.OFFLINE, camera_id=record["camera_id"],
            score=1.0, first_image_id=image_id, last_image_id=image_id, key_image_id=image_id, frame_count=1,
            record_path=files.record, captured_at=record["offline_since"],
        )
        return Outputs(writes, [Send(self.cfg.topics.events.name, record["camera_id"].encode(), event.encode())])


def offline_record(cfg: Config, event_id: str, camera_id: str, image_id: str, since: float,
                   reason: str) -> dict[str, Any]:
    """An offline event's record, shaped like a detected event's (records/events.py) so every reader takes it."""
    files = event_files(cfg, event_id)
    tail = image_id.rsplit("-", 1)[-1]
    seq = int(tail) if tail.isdigit() else 0
    return {
        "event_id": event_id, "event_type": EventType.OFFLINE.value, "camera_id": camera_id, "status": "open",
        "score": 1.0, "first_image_id": image_id, "last_image_id": image_id, "key_image_id": image_id,
        "first_seq": seq, "last_seq": seq, "previous_image_id": None, "frame_count": 1,
        "started_at": since, "ended_at": None, "frames": [],
        "offline_since": since, "online_again_at": None, "reason": reason,
        "paths": {"record": files.record, "text": files.text,
                  "key_image": image_path(cfg, camera_id, image_id)},  # the last frame before the outage
    }


def offline_text(record: dict[str, Any]) -> str:
    """A human-readable version of an offline event record."""
    back = record.get("online_again_at")
    return (f"Event {record['event_id']}: camera {record['camera_id']} offline\n"
            f"Status:        {record['status']}\n"
            f"Offline since: {utc(record['offline_since'])}\n"
            f"Online again:  {utc(back) if back else '-'}\n"
            f"Reason:        {record['reason'] or '-'}\n"
            f"Last frame:    {record['key_image_id']}\n")


def monitor_spec(cfg: Config, step: CameraMonitorStep) -> StageSpec[CameraStatus]:
    """The monitor as the runner sees it."""
    return StageSpec("camera-monitor", cfg.groups.camera_monitor, cfg.topics.camera_status.name,
                     CameraStatus.decode, step)


def start_monitor(cfg: Config, stop: threading.Event) -> threading.Thread:
    """Run the monitor in a thread of the calling process (the analyzer's) until stop is set."""
    step = CameraMonitorStep(cfg)
    logger.info("camera monitor: topic %s as group %s; offline events to %s", cfg.topics.camera_status.name,
                cfg.groups.camera_monitor, cfg.topics.events.name)

    def body() -> None:
        options = RunOptions(progress_every_s=60.0, log_assignments=False)
        try:
            run_stage(cfg, monitor_spec(cfg, step), stop, options, lambda _stats: None)
        except Exception as exc:  # the analyzer goes on without it; say so in one line
            logger.error("camera monitor stopped: %s: %s", type(exc).__name__, exc)

    thread = threading.Thread(target=body, name="camera-monitor", daemon=True)
    thread.start()
    return thread
