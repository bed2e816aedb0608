"""From an alert to its deliveries: the part of the alerter's pure step that plans who is sent what.

The alerter lists every delivery in the alert record and publishes one DeliveryMessage per delivery
to send on the deliveries topic, keyed by destination. The cooldown state of a camera lives in
`<alerts>/cooldown/<camera_id>.json`: the alerter's decoder reads it and its step returns the new
state as a file to write, before the alert record (the marker that the alert is complete).
"""

from __future__ import annotations

import copy
from typing import Any

from image_pipeline.config import Config, Subscription
from image_pipeline.delivery.plan import alertees_of, cooldown_key, decide, idempotency_key
from image_pipeline.messages import DeliveryMessage
from image_pipeline.stages.step import Send
from image_pipeline.storage import check_camera_id

COOLDOWN_FOLDER = "cooldown"


def cooldown_file(cfg: Config, camera_id: str) -> str:
    """A camera's cooldown state, relative to the data folder."""
    return f"{cfg.paths.alerts}/{COOLDOWN_FOLDER}/{check_camera_id(camera_id)}.json"


def plan_deliveries(subscriptions: list[Subscription], alert_id: str, event_id: str, event_type: str,
                    captured_at: float, cooldown: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The alert's deliveries (one per subscription and channel) and the camera's new cooldown state.

    The file channel is the alert record itself: `recorded`, never held. Network channels of a
    subscription share one cooldown decision: `pending` (to send) or `held`.
    """
    state = copy.deepcopy(cooldown)
    entries = []
    for sub in subscriptions:
        decision = None
        for alertee in alertees_of(sub):
            entry: dict[str, Any] = {
                "alertee": alertee.alertee_id, "subscription": sub.name, "channel": alertee.channel,
                "target": alertee.target, "idempotency_key": idempotency_key(alert_id, alertee.alertee_id),
                "destination": alertee.destination, "grouped_count": 0, "grouped_event_ids": [],
            }
            if alertee.channel == "file":
                entry["status"] = "recorded"
            else:
                if decision is None:
                    window = cooldown_key(sub.name, event_type)
                    decision, _ = decide(state, window, event_id, captured_at, sub.cooldown_s)
                entry["status"] = "pending" if decision.send else "held"
                entry["grouped_count"] = decision.grouped_count
                entry["grouped_event_ids"] = list(decision.grouped_event_ids)
            entries.append(entry)
    return entries, state


def delivery_sends(cfg: Config, record: dict[str, Any]) -> list[Send]:
    """One DeliveryMessage per pending delivery of an alert record, keyed by its destination."""
    sends = []
    for entry in record.get("deliveries", []):
        if entry.get("status") != "pending":
            continue
        message = DeliveryMessage(
            idempotency_key=entry["idempotency_key"], alert_id=record["alert_id"], event_id=record["event_id"],
            event_type=record["event_type"], camera_id=record["camera_id"], score=record["score"],
            summary=record["summary"], subscription=entry["subscription"], alertee=entry["alertee"],
            channel=entry["channel"], destination=entry["destination"], target=entry["target"],
            key_frame_path=record["paths"].get("annotated") or record["paths"]["key_image"],
            alert_path=record["paths"]["alert"], captured_at=record["captured_at"],
            alerted_at=record["alerted_at"], grouped_count=entry["grouped_count"],
            grouped_event_ids=entry["grouped_event_ids"],
        )
        sends.append(Send(cfg.topics.deliveries.name, entry["destination"].encode(), message.encode()))
    return sends
