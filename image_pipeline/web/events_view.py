"""GET /events/<id>: an event's key, previous, difference and annotated images with its record and alert."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from image_pipeline.delivery.status import alert_deliveries
from image_pipeline.web import services, wants_json
from image_pipeline.web.data import record_paths, servable_url_path

bp = Blueprint("events", __name__)

# (label, key in the record's "paths") in the order they are shown side by side.
IMAGE_SLOTS = [
    ("Key frame", "key_image"),
    ("Previous frame", "previous_image"),
    ("Difference", "diff"),
    ("Annotated", "annotated"),
]


def _not_found(text: str) -> Any:
    """A clear 404 page (or JSON) naming what was looked for."""
    message = f"No event or alert with id {text!r}." if text else "Type an event id or an alert number."
    if wants_json():
        return jsonify(error=message), 404
    return render_template("not_found.html", query=text, message=message), 404


@bp.get("/events")
def lookup() -> Any:
    """The viewer's box: an event id or an alert id (e.g. A-3f9c2b1e) leads to the event."""
    text = request.args.get("q", "").strip()[:200]
    event_id = services().records.find_event_id(text) if text else None
    if event_id is None:
        return _not_found(text)
    return redirect(url_for("events.view", event_id=event_id))


@bp.get("/events/<event_id>")
def view(event_id: str) -> Any:
    """The event viewer page (or the record and alert as JSON)."""
    store = services().records
    cfg = services().cfg
    event = store.event(event_id)
    if event is None:
        resolved = store.find_event_id(event_id)
        if resolved is None or resolved == event_id:
            return _not_found(event_id)
        return redirect(url_for("events.view", event_id=resolved))
    alert = store.alert(event_id)
    deliveries = alert_deliveries(cfg, alert) if alert else []
    paths = record_paths(event)
    images = [
        {"label": label, "key": key, "src": servable_url_path(cfg, paths.get(key))}
        for label, key in IMAGE_SLOTS
    ]
    if wants_json():
        return jsonify(event=event, alert=alert, images=images, deliveries=deliveries)
    return render_template(
        "event.html", event=event, alert=alert, images=images, deliveries=deliveries,
        event_json=json.dumps(event, indent=2, sort_keys=True),
        alert_json=json.dumps(alert, indent=2, sort_keys=True) if alert else None,
    )
