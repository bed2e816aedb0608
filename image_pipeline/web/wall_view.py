"""GET /cameras: the camera wall (the landing page) and each camera's timeline; /api/cameras feeds them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from image_pipeline.model import EVENT_TYPES
from image_pipeline.storage import UnsafePathError, check_camera_id
from image_pipeline.web import services
from image_pipeline.web.cameras import camera_statuses
from image_pipeline.web.wall import camera_tiles, camera_timeline

bp = Blueprint("wall", __name__)


def wall_state() -> dict[str, Any]:
    """Every tile of the wall, as JSON-ready data."""
    svc = services()
    return {"cameras": camera_tiles(svc.cfg, svc.records, camera_statuses(svc.cfg))}


def _camera(camera_id: str) -> str:
    """The camera id from the URL, or a 404 when it is not a safe id."""
    try:
        return check_camera_id(camera_id)
    except UnsafePathError:
        raise NotFound(f"no camera {camera_id[:80]!r}") from None


def _type_filter() -> str | None:
    wanted = request.args.get("type", "").strip()
    return wanted if wanted in EVENT_TYPES else None


@bp.get("/")
def landing() -> Any:
    """The landing page is the camera wall."""
    return redirect(url_for("wall.wall"))


@bp.get("/cameras")
def wall() -> Any:
    """The camera wall; its script refreshes the tiles from /api/cameras."""
    return render_template("cameras.html", state=wall_state())


@bp.get("/api/cameras")
def api_cameras() -> Any:
    """The wall's tiles as JSON."""
    return jsonify(wall_state())


@bp.get("/cameras/<camera_id>")
def timeline(camera_id: str) -> Any:
    """A camera's events on a time axis, filterable by type (?type= without script)."""
    data = camera_timeline(services().records, _camera(camera_id), _type_filter())
    return render_template("camera_timeline.html", timeline=data, event_types=list(EVENT_TYPES),
                           selected=_type_filter() or "")


@bp.get("/api/cameras/<camera_id>/timeline")
def api_timeline(camera_id: str) -> Any:
    """A camera's timeline as JSON (?type= filters by event type)."""
    return jsonify(camera_timeline(services().records, _camera(camera_id), _type_filter()))
