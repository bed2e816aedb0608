"""Delivery status per alert and alertee: its file layout, its record, and the view the web shows.

The alerter lists an alert's deliveries in the alert record (`pending`, `held` by the cooldown, or
`recorded` for the file channel). The delivery worker keeps one file per alert and alertee,
`<alerts>/deliveries/<alert_id>/<alertee>.json`, with `pending`, `delivered` or `failed`, the attempt
count and the last error. Only the worker writes those files, one thread per destination, so no
two writers ever share one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from image_pipeline.config import Config
from image_pipeline.messages import DeliveryMessage
from image_pipeline.records.events import read_record
from image_pipeline.storage import UnsafePathError, check_id, safe_join

DELIVERIES_FOLDER = "deliveries"
TERMINAL = ("delivered", "failed")


def status_path(cfg: Config, alert_id: str, alertee: str) -> Path:
    """Where the worker keeps one delivery's status."""
    rel = f"{DELIVERIES_FOLDER}/{check_id(alert_id, 'alert_id')}/{check_id(alertee, 'alertee')}.json"
    return safe_join(cfg.alerts_dir, rel)


def status_record(delivery: DeliveryMessage, status: str, attempts: int, first_at: float | None,
                  last_at: float | None, error: str | None, next_at: float | None = None,
                  delivered_at: float | None = None) -> dict[str, Any]:
    """One delivery's status as the worker writes it."""
    return {
        "idempotency_key": delivery.idempotency_key,
        "alert_id": delivery.alert_id,
        "event_id": delivery.event_id,
        "alertee": delivery.alertee,
        "subscription": delivery.subscription,
        "channel": delivery.channel,
        "target": delivery.target,
        "grouped_count": delivery.grouped_count,
        "status": status,
        "attempts": attempts,
        "first_attempt_at": first_at,
        "last_attempt_at": last_at,
        "next_attempt_at": next_at,
        "delivered_at": delivered_at,
        "last_error": error,
    }


def read_status(cfg: Config, alert_id: str, alertee: str) -> dict[str, Any] | None:
    """The status the worker recorded, or None (not tried yet, or an unsafe id)."""
    try:
        return read_record(status_path(cfg, alert_id, alertee))
    except UnsafePathError:
        return None


def alert_deliveries(cfg: Config, alert: dict[str, Any]) -> list[dict[str, Any]]:
    """Every delivery of an alert: the alerter's list, each overlaid with the worker's status file."""
    alert_id = alert.get("alert_id")
    listed = alert.get("deliveries")
    if not isinstance(alert_id, str) or not isinstance(listed, list):
        return []
    merged = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("alertee"), str):
            continue
        found = read_status(cfg, alert_id, entry["alertee"]) if entry.get("status") == "pending" else None
        row = {**entry, "attempts": 0, "last_error": None}
        if found:
            row.update({k: found.get(k) for k in ("status", "attempts", "last_error", "first_attempt_at",
                                                   "last_attempt_at", "next_attempt_at", "delivered_at")})
        merged.append(row)
    return merged
