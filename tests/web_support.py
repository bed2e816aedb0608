"""Helpers of the web tests: image bytes, event/alert record fixtures, and reading a topic whole."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from flask import Flask
from kafka.structs import TopicPartition
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_consumer
from image_pipeline.messages import parse_json
from image_pipeline.storage import atomic_write_bytes, atomic_write_json


def image_bytes(fmt: str = "jpg", width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A small random image encoded as .jpg or .png."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(f".{fmt}", image)
    assert ok
    return buf.tobytes()


def read_topic(cfg: Config, topic: str, expect: int = 1, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """Every record value of a topic as JSON (no consumer group), waiting for at least `expect`."""
    consumer = make_consumer(cfg, None, "web-test-reader")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(parse_json(r.value) for r in records)
            if len(values) >= expect:
                ends = consumer.end_offsets(parts)
                if all(consumer.position(tp) >= ends[tp] for tp in parts):
                    break
        return values
    finally:
        consumer.close(autocommit=False)


def write_event_fixture(
    cfg: Config, camera_id: str = "cam-01", event_type: str = "intrusion", number: int = 1,
    started_at: float | None = None, summary: str = "Someone walked past cam-01.", alert_id: str | None = None,
    with_alert: bool = True, paths_override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write an event record (and its alert) in the shape the analyzer and alerter write, with real images."""
    event_id = f"{camera_id}-{event_type}-{number:06d}"
    key_id, prev_id = f"{camera_id}-{number * 10 + 1:08d}", f"{camera_id}-{number * 10:08d}"
    images, events = cfg.paths.images, cfg.paths.events
    paths: dict[str, Any] = {
        "record": f"{events}/{event_id}.json",
        "text": f"{events}/{event_id}.txt",
        "diff": f"{events}/{event_id}_diff.jpg",
        "annotated": f"{events}/{event_id}_annotated.jpg",
        "key_image": f"{images}/{camera_id}/{key_id}.jpg",
        "previous_image": f"{images}/{camera_id}/{prev_id}.jpg",
    }
    for i, key in enumerate(("diff", "annotated", "key_image", "previous_image")):
        atomic_write_bytes(cfg.data_dir / paths[key], image_bytes("jpg", 80, 60, seed=number * 10 + i), fsync=False)
    paths.update(paths_override or {})
    started = time.time() if started_at is None else started_at
    record = {
        "event_id": event_id, "event_type": event_type, "camera_id": camera_id, "status": "closed",
        "score": 0.87, "first_image_id": key_id, "last_image_id": key_id, "first_seq": number * 10 + 1,
        "last_seq": number * 10 + 1, "key_image_id": key_id, "previous_image_id": prev_id, "frame_count": 1,
        "started_at": started, "ended_at": started + 1,
        "frames": [{"image_id": key_id, "seq": number * 10 + 1, "score": 0.87, "boxes": [[1, 2, 3, 4]]}],
        "paths": paths,
    }
    atomic_write_json(cfg.events_dir / f"{event_id}.json", record, fsync=False)
    if with_alert:
        alert = {
            "alert_id": alert_id or f"A-{number:08x}", "event_id": event_id, "event_type": event_type,
            "camera_id": camera_id, "score": 0.87, "summary": summary, "captured_at": started,
            "alerted_at": started + 2,
            "alertees": [{"name": "Security desk", "contact": "desk@example.com", "subscription": "intrusion"}],
            "paths": {**paths, "alert": f"{cfg.paths.alerts}/{event_id}.json"},
        }
        atomic_write_json(cfg.alerts_dir / f"{event_id}.json", alert, fsync=False)
    return record


def json_body(response: TestResponse) -> dict[str, Any]:
    """The JSON object a test-client response carries; fails the test if the body is not a JSON object."""
    body = response.json
    assert isinstance(body, dict), f"expected a JSON object, got {body!r} (status {response.status_code})"
    return body


def write_json(path: Path, obj: Any) -> None:
    """Write JSON without fsync (test fixtures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def multipart_body(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """Encode a multipart/form-data body for urllib; returns (body, content type)."""
    boundary = f"----web-test-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, mimetype) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {mimetype}\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def http_upload(base_url: str, data: bytes, camera_id: str, filename: str = "frame.jpg") -> tuple[int, dict[str, Any]]:
    """POST /upload over real HTTP; returns (status, JSON body)."""
    body, content_type = multipart_body({"camera_id": camera_id}, {"image": (filename, data, "image/jpeg")})
    request = urllib.request.Request(f"{base_url}/upload", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class ServedApp:
    """A Flask app served over real HTTP by Werkzeug in a background thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.thread.join(timeout=10)


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    """Wait until a URL answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)
