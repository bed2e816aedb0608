"""The web server: an app factory, a blueprint per feature (upload, messages, dashboard, events, cameras, playback)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request, send_file
from kafka import KafkaProducer
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Response

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.storage import UnsafePathError
from image_pipeline.web.data import SERVABLE_SUFFIXES, RecordStore, resolve_data_path

logger = logging.getLogger(__name__)

# The upload producer gives up on a record quickly, so a 503 means "not delivered".
UPLOAD_REQUEST_TIMEOUT_MS = 5_000
UPLOAD_DELIVERY_TIMEOUT_MS = 10_000


class WebServices:
    """What the views share: the config, the record store and one lazily made producer."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.records = RecordStore(cfg)
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def producer(self) -> KafkaProducer:
        """The shared producer, made on first use; raises KafkaError if no broker answers."""
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(
                    self.cfg, "image-web",
                    request_timeout_ms=UPLOAD_REQUEST_TIMEOUT_MS,
                    delivery_timeout_ms=UPLOAD_DELIVERY_TIMEOUT_MS,
                    bootstrap_timeout_ms=UPLOAD_REQUEST_TIMEOUT_MS,
                    linger_ms=0,
                )
            return self._producer

    def close(self) -> None:
        """Flush and close the producer, if one was made."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)


def services() -> WebServices:
    """The WebServices of the current app."""
    found: WebServices = current_app.extensions["image_pipeline"]
    return found


def wants_json() -> bool:
    """Whether the client asked for JSON (?format=json or an Accept header preferring it)."""
    if request.args.get("format") == "json":
        return True
    if request.args.get("format") == "html":
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def create_app(cfg: Config, testing: bool = False) -> Flask:
    """Build the Flask app for one pipeline config."""
    app = Flask(__name__)
    # Werkzeug refuses a larger body before reading it into memory.
    app.config["MAX_CONTENT_LENGTH"] = cfg.web.max_upload_bytes
    app.config["TESTING"] = testing
    app.extensions["image_pipeline"] = WebServices(cfg)

    from image_pipeline.web import alerts_api, dashboard, events_view, messages_view, playback_view, upload, wall_view

    app.register_blueprint(upload.bp)
    app.register_blueprint(messages_view.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(events_view.bp)
    app.register_blueprint(alerts_api.bp)
    app.register_blueprint(wall_view.bp)
    app.register_blueprint(playback_view.bp)

    @app.get("/data/<path:relative>")
    def data_file(relative: str) -> Response:
        """An image inside the data folders; anything else is a 404."""
        try:
            path = resolve_data_path(services().cfg, relative)
        except UnsafePathError:
            raise NotFound("no such file in the data folders") from None
        mimetype = SERVABLE_SUFFIXES.get(path.suffix.lower())
        if mimetype is None or not path.is_file():
            raise NotFound("no such image in the data folders")
        return send_file(path, mimetype=mimetype, max_age=60)

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness probe for the container."""
        return jsonify(status="ok")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """JSON errors for API clients, a short page otherwise; never a traceback."""
        code = exc.code or 500
        if wants_json() or request.path.startswith(("/upload", "/api/")):
            return jsonify(error=exc.description or exc.name), code
        return render_template("error.html", code=code, name=exc.name, message=exc.description), code

    return app
