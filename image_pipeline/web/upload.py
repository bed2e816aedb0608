"""POST /upload: validate an image by its content, store and announce it like the receiver does.

Status codes (ImageError.kind in brackets):
  201 stored and announced;
  400 no `image` field, bad camera_id, empty file [empty] or corrupt data [corrupt];
  413 body over web.max_upload_bytes, image over limits.max_image_bytes [too_large],
      or header dimensions over the pixel limits [bomb];
  415 not a JPEG or PNG by its magic bytes [unsupported];
  503 Kafka did not acknowledge the announcement (the stored file is removed again).
Every 4xx is also published as an UploadError record on the error topic.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from kafka.errors import KafkaError
from werkzeug.exceptions import RequestEntityTooLarge

from image_pipeline.messages import ImageMessage, UploadError
from image_pipeline.records.imagedb import ImageAnnouncer, camera_history
from image_pipeline.storage import UnsafePathError, check_camera_id, safe_join
from image_pipeline.vision.imaging import ImageError, decode, sniff_format
from image_pipeline.web import UPLOAD_DELIVERY_TIMEOUT_MS, WebServices, services

logger = logging.getLogger(__name__)
bp = Blueprint("upload", __name__)

DEFAULT_CAMERA = "upload"
STATUS_BY_KIND = {"empty": 400, "corrupt": 400, "too_large": 413, "bomb": 413, "unsupported": 415}
EXT_BY_FORMAT = {"jpeg": "jpg", "png": "png"}


class SeqCounter:
    """Upload sequence numbers: consecutive per camera, continuing after the last stored image.

    Consecutive numbers matter: the analyzer treats seq as the frame number, and an event's
    "previous frame" is the image with seq - 1.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.lock = threading.Lock()

    def next(self, camera_id: str, images_dir: Path) -> int:
        """The next seq for this camera; call with self.lock held."""
        last = self._last.get(camera_id)
        if last is None:
            stored = camera_history(images_dir, camera_id, before_seq=2**62, limit=1)
            last = stored[-1].seq if stored else -1
        self._last[camera_id] = last + 1
        return last + 1


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    """Each app gets its own counter."""
    state.app.extensions["upload_seq"] = SeqCounter()


def _publish_failure(svc: WebServices, status: int, error: str, filename: str, camera_id: str, size: int) -> None:
    """Put an UploadError record on the error topic; a Kafka failure here is only logged."""
    record = UploadError(status=status, error=error, filename=filename[:200], camera_id=camera_id[:200], size=size)
    try:
        svc.producer().send(
            svc.cfg.topics.errors.name, key=camera_id[:200].encode("utf-8", "replace"), value=record.encode()
        ).get(timeout=UPLOAD_DELIVERY_TIMEOUT_MS / 1000 + 2)
    except KafkaError as exc:
        logger.warning("could not publish upload error status=%s error=%s kafka=%s", status, error, exc)


def _refuse(svc: WebServices, status: int, error: str, filename: str = "", camera_id: str = "", size: int = 0) -> Any:
    """A JSON 4xx answer, published to the error topic first."""
    logger.info("upload refused status=%s camera=%s size=%s error=%s", status, camera_id, size, error)
    _publish_failure(svc, status, error, filename, camera_id, size)
    return jsonify(error=error, status=status), status


@bp.post("/upload")
def upload() -> Any:
    """Validate, store and announce one uploaded image."""
    svc = services()
    try:
        files = request.files
        camera_id = request.form.get("camera_id", "").strip() or DEFAULT_CAMERA
    except RequestEntityTooLarge:
        return _refuse(
            svc, 413, f"upload is larger than the limit of {svc.cfg.web.max_upload_bytes} bytes",
            size=request.content_length or 0,
        )
    file = files.get("image")
    if file is None:
        return _refuse(svc, 400, "no file in the multipart field 'image'", camera_id=camera_id)
    filename = file.filename or ""
    data = file.read()
    try:
        check_camera_id(camera_id)
    except UnsafePathError as exc:
        return _refuse(svc, 400, str(exc), filename, camera_id, len(data))
    try:
        image = decode(data, svc.cfg.limits)
    except ImageError as exc:
        return _refuse(svc, STATUS_BY_KIND.get(exc.kind, 400), str(exc), filename, camera_id, len(data))
    # decode() accepted it, so the magic bytes name one of the two allowed formats.
    ext = EXT_BY_FORMAT[sniff_format(data) or "jpeg"]
    height, width = image.shape[:2]
    return _store_and_announce(svc, camera_id, data, width, height, ext)


def _store_and_announce(svc: WebServices, camera_id: str, data: bytes, width: int, height: int, ext: str) -> Any:
    """Store then announce; 201 after Kafka acknowledged, 503 (file removed) if it did not."""
    message: ImageMessage | None = None
    try:
        announcer = ImageAnnouncer(svc.cfg, svc.producer())
        # Holding the lock across seq and send keeps a camera's images in seq order on its partition.
        counter: SeqCounter = current_app.extensions["upload_seq"]
        with counter.lock:
            seq = counter.next(camera_id, svc.cfg.images_dir)
            message, future = announcer.store_and_announce(
                camera_id, seq, data, width, height, source="upload", ext=ext
            )
        future.get(timeout=UPLOAD_DELIVERY_TIMEOUT_MS / 1000 + 2)
    except KafkaError as exc:
        logger.error("upload not announced camera=%s kafka=%s", camera_id, exc)
        if message is not None:
            _remove_quietly(svc, message)
        return jsonify(error=f"Kafka did not accept the announcement; try again later ({exc})", status=503), 503
    assert message is not None
    logger.info("upload stored image=%s camera=%s size=%dx%d bytes=%d", message.image_id, camera_id, width,
                height, len(data))
    return jsonify(
        image_id=message.image_id, camera_id=camera_id, seq=seq, path=message.path,
        stored_at=f"{svc.cfg.paths.images}/{message.path}", width=width, height=height, format=ext,
    ), 201


def _remove_quietly(svc: WebServices, message: ImageMessage) -> None:
    try:
        safe_join(svc.cfg.images_dir, message.path).unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove unannounced image=%s error=%s", message.image_id, exc)
