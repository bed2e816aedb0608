"""The camera wall's data: one tile per camera (latest frame, status, last event, today's counts) and timelines.

Everything here reads the data folders (and takes the camera statuses already read from Kafka); every
path is built from checked ids and goes through the data helpers, so a record cannot point the wall
outside the data folders.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from image_pipeline.config import Config
from image_pipeline.records.events import image_path
from image_pipeline.records.imagedb import camera_history, stored_capture_time
from image_pipeline.storage import UnsafePathError, check_camera_id
from image_pipeline.web.data import RecordStore, resolve_data_path, thumbnail_path

MAX_TILES = 48
MAX_TIMELINE_EVENTS = 500
# A camera whose newest frame is older than this is "silent", whatever its last status said.
SILENT_AFTER_S = 10.0
NO_SEQ_LIMIT = 2**62
MIN_MARK_PERCENT = 0.8  # a short event still gets a mark one can see and click


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def start_of_today(now: float) -> float:
    """Local midnight of the day `now` falls in, as epoch seconds."""
    local = dt.datetime.fromtimestamp(now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def latest_frame(cfg: Config, camera_id: str) -> dict[str, Any] | None:
    """The camera's newest stored original: its id, a servable thumbnail (or original) and capture time."""
    try:
        newest = camera_history(cfg.images_dir, camera_id, NO_SEQ_LIMIT, 1)
    except UnsafePathError:
        return None
    if not newest:
        return None
    stored = newest[0]
    relpath = image_path(cfg, camera_id, stored.image_id)
    url = thumbnail_path(cfg, relpath)
    if url is None:
        return None
    return {
        "image_id": stored.image_id,
        "url": url,
        "captured_at": stored_capture_time(resolve_data_path(cfg, relpath)),
    }


def tile_status(status: dict[str, Any] | None, frame: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """online, offline or "silent for N s": from the camera-status topic when there is one, else the frames."""
    last_frame = frame["captured_at"] if frame else None
    if status is not None:
        state = str(status.get("state", "unknown"))
        reported = _num(status.get("last_frame_at"))
        last_frame = max(filter(None, (last_frame, reported)), default=None)
        if state != "online":
            reason = str(status.get("reason") or "")
            return {"state": state, "label": state + (f": {reason}" if reason else ""), "source": "camera-status",
                    "silent_s": None}
    if last_frame is None:
        return {"state": "silent", "label": "no frames yet", "source": "frames", "silent_s": None}
    age = max(0.0, now - last_frame)
    source = "camera-status" if status is not None else "frames"
    if age <= SILENT_AFTER_S:
        return {"state": "online", "label": "online", "source": source, "silent_s": round(age)}
    return {"state": "silent", "label": f"silent for {age:.0f} s", "source": source, "silent_s": round(age)}


def _camera_ids(cfg: Config, statuses: dict[str, dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
    """Cameras with a folder of images, a status or an event; only ids that are safe folder names."""
    found: set[str] = set(statuses)
    if cfg.images_dir.is_dir():
        found.update(p.name for p in cfg.images_dir.iterdir() if p.is_dir())
    found.update(e["camera_id"] for e in events if isinstance(e.get("camera_id"), str))
    safe = []
    for camera_id in sorted(found):
        try:
            safe.append(check_camera_id(camera_id))
        except UnsafePathError:
            continue
    return safe[:MAX_TILES]


def _event_summary(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(event.get("event_id", "")),
        "event_type": str(event.get("event_type", "")),
        "time": _num(event.get("started_at")) or 0.0,
    }


def camera_tiles(cfg: Config, store: RecordStore, statuses: list[dict[str, Any]],
                 now: float | None = None) -> list[dict[str, Any]]:
    """One tile per camera, sorted by camera id."""
    now = time.time() if now is None else now
    by_camera = {s["camera_id"]: s for s in statuses}
    events = [e for e in store.events() if isinstance(e.get("event_id"), str)]
    alerted = {a.get("event_id") for a in store.alerts()}
    today = start_of_today(now)
    tiles = []
    for camera_id in _camera_ids(cfg, by_camera, events):
        mine = [e for e in events if e.get("camera_id") == camera_id]
        mine.sort(key=lambda e: (_num(e.get("started_at")) or 0.0, e["event_id"]))
        todays = [e for e in mine if (_num(e.get("started_at")) or 0.0) >= today]
        by_type: dict[str, int] = {}
        for event in todays:
            kind = str(event.get("event_type", "unknown"))
            by_type[kind] = by_type.get(kind, 0) + 1
        frame = latest_frame(cfg, camera_id)
        tiles.append({
            "camera_id": camera_id,
            "frame": frame,
            "status": tile_status(by_camera.get(camera_id), frame, now),
            "last_event": _event_summary(mine[-1]) if mine else None,
            "today": {"events": len(todays), "alerts": sum(e["event_id"] in alerted for e in todays),
                      "by_type": dict(sorted(by_type.items()))},
        })
    return tiles


def _span(events: list[dict[str, Any]]) -> tuple[float, float]:
    """The time axis: from the first start to the last end, never narrower than a minute."""
    starts = [e["started_at"] for e in events]
    ends = [e["ended_at"] for e in events]
    t0, t1 = min(starts), max(ends)
    if t1 - t0 < 60.0:
        middle = (t0 + t1) / 2
        t0, t1 = middle - 30.0, middle + 30.0
    # A margin on both sides keeps the first and the last mark off the edges of the axis.
    margin = (t1 - t0) * 0.02
    return t0 - margin, t1 + margin


def camera_timeline(store: RecordStore, camera_id: str, event_type: str | None = None,
                    ticks: int = 5) -> dict[str, Any]:
    """A camera's events on a time axis: each with its left edge and width in percent, oldest first."""
    alerts = {a.get("event_id"): a.get("alert_id") for a in store.alerts()}
    events = []
    for event in store.events():
        if event.get("camera_id") != camera_id or not isinstance(event.get("event_id"), str):
            continue
        started = _num(event.get("started_at")) or 0.0
        ended = max(started, _num(event.get("ended_at")) or started)
        events.append({**_event_summary(event), "started_at": started, "ended_at": ended,
                       "score": _num(event.get("score")) or 0.0, "alert_id": alerts.get(event["event_id"])})
    events.sort(key=lambda e: (e["started_at"], e["event_id"]))
    events = events[-MAX_TIMELINE_EVENTS:]
    types = sorted({e["event_type"] for e in events})
    if event_type:
        events = [e for e in events if e["event_type"] == event_type]
    if not events:
        return {"camera_id": camera_id, "types": types, "events": [], "start": None, "end": None, "ticks": []}
    t0, t1 = _span(events)
    width = t1 - t0
    for event in events:
        size = max(MIN_MARK_PERCENT, 100 * (event["ended_at"] - event["started_at"]) / width)
        event["width"] = round(size, 3)
        event["left"] = round(min(100 * (event["started_at"] - t0) / width, 100 - size), 3)
    marks = [{"time": t0 + width * i / (ticks - 1), "left": round(100 * i / (ticks - 1), 3)} for i in range(ticks)]
    return {"camera_id": camera_id, "types": types, "events": events, "start": t0, "end": t1, "ticks": marks}
