"""GET /api/alerts/<id>: an alert with the delivery status of each alertee (pending, held, delivered, failed)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.exceptions import NotFound

from image_pipeline.delivery.status import alert_deliveries
from image_pipeline.web import services

bp = Blueprint("alerts_api", __name__)


@bp.get("/api/alerts/<alert_id>")
def alert_status(alert_id: str) -> Any:
    """The alert (by alert id such as A-3f9c2b1e, or by event id) and its deliveries, as JSON."""
    store = services().records
    text = alert_id.strip()[:200]
    event_id = store.find_event_id(text)
    alert = store.alert(event_id) if event_id else None
    if alert is None:
        raise NotFound(f"no alert with id {text!r}")
    return jsonify(alert_id=alert.get("alert_id"), event_id=event_id, summary=alert.get("summary"),
                   deliveries=alert_deliveries(services().cfg, alert), alert=alert)
