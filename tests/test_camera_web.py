"""The dashboard shows each real camera's latest status from the camera-status topic."""

from __future__ import annotations

from flask.testing import FlaskClient

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import CameraStatus


def test_dashboard_shows_each_cameras_latest_status(client: FlaskClient, pipeline_config: Config) -> None:
    producer = make_producer(pipeline_config, "test-camera-status")
    topic = pipeline_config.topics.camera_status.name
    t0 = 1795484000.0
    for status in (
        CameraStatus("gate", "online", t0, "rtsp", 50, 10, 40, 0, t0 + 9, "gate-00000009", 30.0, reported_at=t0 + 9),
        CameraStatus("gate", "offline", t0 + 10, "rtsp", 50, 10, 40, 1, t0 + 9, "gate-00000009", 30.0,
                     "stream lost after 50 frames read", reported_at=t0 + 10),
        CameraStatus("lobby", "ended", t0 + 5, "file", 100, 20, 80, 0, t0 + 4, "lobby-00000019", 30.0,
                     "end of source after 100 frames", reported_at=t0 + 5),
    ):
        producer.send(topic, key=status.camera_id.encode(), value=status.encode())
    producer.send(topic, key=b"junk", value=b"not json")  # ignored, never an error page
    producer.flush()
    producer.close()

    cameras = client.get("/api/dashboard").get_json()["cameras"]
    assert [(c["camera_id"], c["state"], c["reconnects"]) for c in cameras] == [("gate", "offline", 1),
                                                                              ("lobby", "ended", 0)]
    assert cameras[0]["reason"] == "stream lost after 50 frames read"
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'data-camera-id="gate"' in page and "stream lost after 50 frames read" in page
