"""GET /dashboard: recent events and alerts with thumbnails, filters and counters; GET /api/dashboard feeds it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from image_pipeline.model import EVENT_TYPES
from image_pipeline.web import services
from image_pipeline.web.cameras import camera_statuses
from image_pipeline.web.data import dashboard_items, event_counters
from image_pipeline.web.kafka_reader import KafkaUnavailable, topic_sizes

bp = Blueprint("dashboard", __name__)
MAX_ITEMS = 100


def _filters() -> tuple[str | None, str | None]:
    """Camera and event-type filters from the query string; empty means all."""
    camera = request.args.get("camera", "").strip() or None
    event_type = request.args.get("type", "").strip() or None
    return camera, event_type


def dashboard_state() -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-ready data."""
    svc = services()
    cfg = svc.cfg
    camera, event_type = _filters()
    counters = event_counters(svc.records)
    kafka_error = None
    try:
        sizes = topic_sizes(cfg, [cfg.topics.images.name, cfg.topics.dead_letter.name])
        counters["images"] = sizes[cfg.topics.images.name]
        counters["dead_letters"] = sizes[cfg.topics.dead_letter.name]
    except KafkaUnavailable as exc:
        counters["images"] = None
        counters["dead_letters"] = None
        kafka_error = str(exc)
    items = dashboard_items(cfg, svc.records, camera, event_type, MAX_ITEMS)
    return {
        "filters": {"camera": camera, "type": event_type},
        "event_types": list(EVENT_TYPES),
        "counters": counters,
        "items": items,
        "kafka_error": kafka_error,
        "cameras": camera_statuses(cfg) if kafka_error is None else [],
    }


@bp.get("/dashboard")
def index() -> Any:
    """The dashboard page; its script refreshes it from /api/dashboard."""
    state = dashboard_state()
    return render_template("dashboard.html", state=state)


@bp.get("/api/dashboard")
def api_dashboard() -> Any:
    """The dashboard's data as JSON (same filters as the page: ?camera=&type=)."""
    return jsonify(dashboard_state())
