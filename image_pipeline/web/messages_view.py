"""GET/POST /messages: recent success (images topic) and failure (error topic) records, from Kafka."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from image_pipeline.web import services, wants_json
from image_pipeline.web.kafka_reader import KafkaUnavailable, read_recent

bp = Blueprint("messages", __name__)


def _limit(default: int) -> int:
    """?limit=N, clamped to 1..500."""
    try:
        value = int(request.values.get("limit", default))
    except ValueError:
        value = default
    return max(1, min(value, 500))


@bp.route("/messages", methods=["GET", "POST"])
def messages() -> Any:
    """Recent successes and failures as JSON (?format=json or Accept) or as an HTML page."""
    cfg = services().cfg
    limit = _limit(cfg.web.recent_messages)
    topics = {
        "success": cfg.topics.images.name,
        "failure": cfg.topics.errors.name,
        "dead_letter": cfg.topics.dead_letter.name,
    }
    try:
        recent = read_recent(cfg, list(topics.values()), limit)
    except KafkaUnavailable as exc:
        if wants_json():
            return jsonify(error=str(exc)), 503
        return render_template("messages.html", error=str(exc), sections={}, topics=topics, limit=limit), 503
    sections = {name: [r.to_dict() for r in recent[topic]] for name, topic in topics.items()}
    if wants_json():
        return jsonify(topics=topics, limit=limit, **sections)
    return render_template("messages.html", error=None, sections=sections, topics=topics, limit=limit)
