"""Read event and alert records from the data folders, safely, with a small cache by file stamp."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_pipeline.config import Config
from image_pipeline.records.events import alert_files, event_files
from image_pipeline.storage import UnsafePathError, safe_join

logger = logging.getLogger(__name__)

# Files the /data route may serve, by suffix.
SERVABLE_SUFFIXES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def data_folders(cfg: Config) -> list[Path]:
    """The data folders whose files the web server may read."""
    return [cfg.images_dir, cfg.events_dir, cfg.alerts_dir]


def resolve_data_path(cfg: Config, relative: str) -> Path:
    """A path relative to the data dir that must land inside one of the data folders."""
    candidate = safe_join(cfg.data_dir, relative)
    for folder in data_folders(cfg):
        root = folder.resolve()
        if root in candidate.parents:
            return candidate
    raise UnsafePathError(f"path is outside the data folders: {relative!r}")


def servable_url_path(cfg: Config, relative: object) -> str | None:
    """The relative path if it names an existing image inside the data folders, else None."""
    if not isinstance(relative, str) or not relative:
        return None
    try:
        path = resolve_data_path(cfg, relative)
    except UnsafePathError:
        logger.warning("refused a record path outside the data folders: %r", relative)
        return None
    if path.suffix.lower() not in SERVABLE_SUFFIXES or not path.is_file():
        return None
    return path.relative_to(cfg.data_dir.resolve()).as_posix()


def thumbnail_path(cfg: Config, image_relpath: object) -> str | None:
    """The thumbnail next to an original (from the thumbnails consumer), else the original itself."""
    if not isinstance(image_relpath, str) or "." not in image_relpath:
        return None
    stem = image_relpath.rsplit(".", 1)[0]
    return servable_url_path(cfg, f"{stem}.thumb.jpg") or servable_url_path(cfg, image_relpath)


@dataclass
class _Cached:
    stamp: tuple[int, int]
    record: dict[str, Any] | None


class RecordStore:
    """Event and alert records on disk; parsed files are cached until their mtime or size change."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._cache: dict[Path, _Cached] = {}

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(path)
            if hit and hit.stamp == stamp:
                return hit.record
        record: dict[str, Any] | None
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            record = loaded if isinstance(loaded, dict) else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            logger.warning("unreadable record file=%s error=%s", path.name, exc)
            record = None
        with self._lock:
            self._cache[path] = _Cached(stamp, record)
        return record

    def _all(self, folder: Path) -> list[dict[str, Any]]:
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob("*.json"):
            record = self._read(path)
            if record is not None:
                found.append(record)
        return found

    def event(self, event_id: str) -> dict[str, Any] | None:
        """One event record by id, or None (also for ids that are not safe file names)."""
        try:
            path = safe_join(self.cfg.data_dir, event_files(self.cfg, event_id).record)
        except UnsafePathError:
            return None
        return self._read(path)

    def alert(self, event_id: str) -> dict[str, Any] | None:
        """The alert record of an event, or None."""
        try:
            path = safe_join(self.cfg.data_dir, alert_files(self.cfg, event_id)[0])
        except UnsafePathError:
            return None
        return self._read(path)

    def events(self) -> list[dict[str, Any]]:
        """Every event record."""
        return self._all(self.cfg.events_dir)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert record."""
        return self._all(self.cfg.alerts_dir)

    def find_event_id(self, text: str) -> str | None:
        """The event id that an event id or an alert id typed by a user names, or None."""
        text = text.strip()
        if not text:
            return None
        if self.event(text) is not None:
            return text
        wanted = text.upper()
        for alert in self.alerts():
            alert_id = alert.get("alert_id")
            if isinstance(alert_id, str) and alert_id.upper() == wanted:
                event_id = alert.get("event_id")
                return event_id if isinstance(event_id, str) else None
        return None


def record_paths(record: dict[str, Any]) -> dict[str, Any]:
    """The "paths" mapping of an event or alert record, or an empty one."""
    paths = record.get("paths")
    return paths if isinstance(paths, dict) else {}


def _num(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def dashboard_items(
    cfg: Config, store: RecordStore, camera: str | None, event_type: str | None, limit: int
) -> list[dict[str, Any]]:
    """Recent events with their alerts, newest first, filtered by camera and event type."""
    alerts = {a.get("event_id"): a for a in store.alerts()}
    items = []
    for event in store.events():
        if camera and event.get("camera_id") != camera:
            continue
        if event_type and event.get("event_type") != event_type:
            continue
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            continue
        alert = alerts.get(event_id)
        paths = record_paths(event)
        items.append({
            "event_id": event_id,
            "event_type": str(event.get("event_type", "")),
            "camera_id": str(event.get("camera_id", "")),
            "status": str(event.get("status", "")),
            "score": _num(event.get("score")),
            "time": _num(event.get("started_at")),
            "ended_at": _num(event.get("ended_at")),
            "frame_count": int(_num(event.get("frame_count"))),
            "alert_id": alert.get("alert_id") if alert else None,
            "alert_summary": alert.get("summary") if alert else None,
            "thumbnail": thumbnail_path(cfg, paths.get("key_image")),
        })
    items.sort(key=lambda i: (i["time"], i["event_id"]), reverse=True)
    return items[:limit]


def event_counters(store: RecordStore) -> dict[str, Any]:
    """Events by type, alerts, and the cameras and event types seen (for the filters)."""
    by_type: dict[str, int] = {}
    cameras: set[str] = set()
    for event in store.events():
        kind = str(event.get("event_type", "unknown"))
        by_type[kind] = by_type.get(kind, 0) + 1
        if isinstance(event.get("camera_id"), str):
            cameras.add(event["camera_id"])
    return {
        "events": sum(by_type.values()),
        "events_by_type": dict(sorted(by_type.items())),
        "alerts": len(store.alerts()),
        "cameras": sorted(cameras),
    }
