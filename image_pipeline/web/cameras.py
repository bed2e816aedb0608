"""Each real camera's latest status, from the camera-status topic, for the dashboard."""

from __future__ import annotations

import logging
from typing import Any

from image_pipeline.config import Config
from image_pipeline.messages import CameraStatus, MessageError
from image_pipeline.web.kafka_reader import KafkaUnavailable, read_recent

logger = logging.getLogger(__name__)
RECENT_STATUSES = 200  # heartbeats every 5 s: enough for dozens of cameras' latest


def camera_statuses(cfg: Config) -> list[dict[str, Any]]:
    """The newest valid status of every camera that sent one lately, by camera id; [] when Kafka is away."""
    topic = cfg.topics.camera_status.name
    try:
        records = read_recent(cfg, [topic], RECENT_STATUSES).get(topic, [])
    except KafkaUnavailable as exc:
        logger.debug("no camera statuses: %s", exc)
        return []
    latest: dict[str, CameraStatus] = {}
    for record in records:  # newest first
        if record.value is None:
            continue
        try:
            status = CameraStatus.from_dict(record.value)
        except MessageError:
            continue
        latest.setdefault(status.camera_id, status)
    return [_row(latest[camera]) for camera in sorted(latest)]


def _row(status: CameraStatus) -> dict[str, Any]:
    return {
        "camera_id": status.camera_id, "state": status.state, "since": status.since,
        "last_frame_at": status.last_frame_at, "frames_kept": status.frames_kept,
        "frames_dropped": status.frames_dropped, "reconnects": status.reconnects, "reason": status.reason,
        "reported_at": status.reported_at,
    }
