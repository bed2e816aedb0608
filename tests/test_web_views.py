"""Dashboard, event viewer, messages and the data route, through the Flask test client and the real broker."""

from __future__ import annotations

import io
import time

import pytest
from flask.testing import FlaskClient

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import DeadLetter
from image_pipeline.web import create_app
from tests.web_support import image_bytes, json_body, write_event_fixture

pytestmark = pytest.mark.kafka
XSS = '<script>alert("x")</script>'


def test_empty_dashboard_renders_with_counters(client: FlaskClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "No events yet." in page.text
    state = json_body(client.get("/api/dashboard"))
    assert state["counters"]["images"] == 0
    assert state["counters"]["dead_letters"] == 0
    assert state["items"] == [] and state["kafka_error"] is None


def test_dashboard_lists_newest_first_and_filters(client: FlaskClient, pipeline_config: Config) -> None:
    now = time.time()
    write_event_fixture(pipeline_config, "cam-01", "intrusion", 1, started_at=now - 30)
    write_event_fixture(pipeline_config, "cam-02", "tamper", 2, started_at=now - 10, with_alert=False)
    write_event_fixture(pipeline_config, "cam-01", "lighting_change", 3, started_at=now - 20)
    items = json_body(client.get("/api/dashboard"))["items"]
    assert [i["event_id"] for i in items] == [
        "cam-02-tamper-000002", "cam-01-lighting_change-000003", "cam-01-intrusion-000001",
    ]
    assert items[2]["alert_id"] == "A-00000001" and items[0]["alert_id"] is None
    assert items[0]["thumbnail"] == "image_database/cam-02/cam-02-00000021.jpg"
    by_camera = json_body(client.get("/api/dashboard?camera=cam-01"))["items"]
    assert {i["camera_id"] for i in by_camera} == {"cam-01"} and len(by_camera) == 2
    by_type = json_body(client.get("/api/dashboard?camera=cam-01&type=intrusion"))["items"]
    assert [i["event_id"] for i in by_type] == ["cam-01-intrusion-000001"]
    html = client.get("/dashboard?type=tamper").text
    assert "cam-02-tamper-000002" in html and "cam-01-intrusion-000001" not in html


def test_dashboard_prefers_the_thumbnail_when_it_exists(client: FlaskClient, pipeline_config: Config) -> None:
    write_event_fixture(pipeline_config, "cam-01", "intrusion", 1)
    (pipeline_config.images_dir / "cam-01" / "cam-01-00000011.thumb.jpg").write_bytes(image_bytes())
    [item] = json_body(client.get("/api/dashboard"))["items"]
    assert item["thumbnail"] == "image_database/cam-01/cam-01-00000011.thumb.jpg"
    assert client.get("/data/" + item["thumbnail"]).status_code == 200


def test_counters_count_events_by_type_alerts_images_and_dead_letters(
    client: FlaskClient, pipeline_config: Config
) -> None:
    write_event_fixture(pipeline_config, "cam-01", "intrusion", 1)
    write_event_fixture(pipeline_config, "cam-01", "intrusion", 2, with_alert=False)
    write_event_fixture(pipeline_config, "cam-02", "scene_change", 3)
    for _ in range(2):
        client.post("/upload", data={"image": (io.BytesIO(image_bytes()), "a.jpg")}, content_type="multipart/form-data")
    producer = make_producer(pipeline_config, "test-dlq")
    letter = DeadLetter("images", 0, 5, None, "eA==", "bad", "MessageError", "test")
    producer.send(pipeline_config.topics.dead_letter.name, value=letter.encode()).get(timeout=10)
    producer.close()
    counters = json_body(client.get("/api/dashboard"))["counters"]
    assert counters["events"] == 3
    assert counters["events_by_type"] == {"intrusion": 2, "scene_change": 1}
    assert counters["alerts"] == 2
    assert counters["images"] == 2
    assert counters["dead_letters"] == 1
    assert counters["cameras"] == ["cam-01", "cam-02"]


def test_event_viewer_shows_four_images_record_and_alert(client: FlaskClient, pipeline_config: Config) -> None:
    write_event_fixture(pipeline_config, "cam-01", "intrusion", 7, alert_id="A-3f9c2b1e")
    page = client.get("/events/cam-01-intrusion-000007")
    assert page.status_code == 200
    for src in (
        "/data/image_database/cam-01/cam-01-00000071.jpg", "/data/image_database/cam-01/cam-01-00000070.jpg",
        "/data/image_event_database/cam-01-intrusion-000007_diff.jpg",
        "/data/image_event_database/cam-01-intrusion-000007_annotated.jpg",
    ):
        assert f'src="{src}"' in page.text
        served = client.get(src)
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert "A-3f9c2b1e" in page.text and "Security desk" in page.text
    data = json_body(client.get("/events/cam-01-intrusion-000007?format=json"))
    assert data["event"]["event_id"] == "cam-01-intrusion-000007" and data["alert"]["alert_id"] == "A-3f9c2b1e"


def test_box_accepts_alert_id_and_event_id(client: FlaskClient, pipeline_config: Config) -> None:
    write_event_fixture(pipeline_config, "cam-01", "tamper", 4, alert_id="A-3f9c2b1e")
    by_alert = client.get("/events?q=a-3F9C2B1E")
    assert by_alert.status_code == 302 and by_alert.location.endswith("/events/cam-01-tamper-000004")
    by_event = client.get("/events?q=+cam-01-tamper-000004+")
    assert by_event.status_code == 302 and by_event.location.endswith("/events/cam-01-tamper-000004")
    direct_alert = client.get("/events/A-3f9c2b1e")
    assert direct_alert.status_code == 302 and direct_alert.location.endswith("/events/cam-01-tamper-000004")


@pytest.mark.parametrize("path", [
    "/events/cam-01-intrusion-999999", "/events?q=A-00000000", "/events?q=", "/events/..%5Cconfig", "/events/a%00b",
    "/events/.hidden",
])
def test_unknown_event_is_a_clear_404_page(client: FlaskClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 404
    assert "Event not found" in page.text and "Traceback" not in page.text
    assert json_body(client.get(path, headers={"Accept": "application/json"}))["error"]


def test_values_from_records_are_escaped(client: FlaskClient, pipeline_config: Config) -> None:
    record = write_event_fixture(pipeline_config, "cam-01", "intrusion", 1, summary=XSS, alert_id="A-1")
    record["event_type"] = XSS
    (pipeline_config.events_dir / f"{record['event_id']}.json").write_text(__import__("json").dumps(record))
    for path in ("/dashboard", f"/events/{record['event_id']}"):
        text = client.get(path).text
        assert XSS not in text
        assert "&lt;script&gt;" in text


@pytest.mark.parametrize("bad", [
    "../config.yaml", "image_database/../../config.yaml", "config.yaml", "image_database/%2e%2e/%2e%2e/config.yaml",
    "image_event_database/cam-01-intrusion-000001.json", "image_database", "/etc/passwd", "image_database/nope.jpg",
])
def test_data_route_serves_only_images_inside_the_data_folders(
    client: FlaskClient, pipeline_config: Config, bad: str
) -> None:
    write_event_fixture(pipeline_config)
    (pipeline_config.data_dir / "config.yaml").write_text("secret: 1")
    response = client.get("/data/" + bad, follow_redirects=True)
    assert response.status_code == 404
    assert b"secret" not in response.data


def test_record_paths_outside_the_data_folders_are_not_shown(client: FlaskClient, pipeline_config: Config) -> None:
    outside = pipeline_config.data_dir.parent / "outside.jpg"
    outside.write_bytes(image_bytes())
    write_event_fixture(pipeline_config, paths_override={"key_image": "../outside.jpg", "diff": "/etc/passwd"})
    page = client.get("/events/cam-01-intrusion-000001")
    assert page.status_code == 200
    assert "outside.jpg" not in page.text.split("<pre")[0]
    assert page.text.count("not available") == 2
    [item] = json_body(client.get("/api/dashboard"))["items"]
    assert item["thumbnail"] is None


def test_messages_show_successes_and_failures_from_kafka(client: FlaskClient) -> None:
    ok = client.post("/upload", data={"image": (io.BytesIO(image_bytes()), "ok.jpg")},
                     content_type="multipart/form-data")
    bad = client.post("/upload", data={"image": (io.BytesIO(b"nope" * 10), "<b>x</b>.jpg")},
                      content_type="multipart/form-data")
    assert (ok.status_code, bad.status_code) == (201, 415)
    data = json_body(client.get("/messages?format=json"))
    assert [m["value"]["image_id"] for m in data["success"]] == [json_body(ok)["image_id"]]
    assert [m["value"]["status"] for m in data["failure"]] == [415]
    assert data["failure"][0]["value"]["filename"] == "<b>x</b>.jpg"
    html = client.post("/messages")
    assert html.status_code == 200
    assert json_body(ok)["image_id"] in html.text and "415" in html.text
    assert "<b>x</b>" not in html.text and "&lt;b&gt;x&lt;/b&gt;" in html.text
    assert json_body(client.get("/messages", headers={"Accept": "application/json"}))["limit"] == 50


def test_messages_limit_keeps_the_newest(client: FlaskClient) -> None:
    for _ in range(4):
        client.post("/upload", data={"image": (io.BytesIO(b""), "e.jpg")}, content_type="multipart/form-data")
    data = json_body(client.get("/messages?format=json&limit=3"))
    offsets = [m["offset"] for m in data["failure"]]
    assert offsets == [3, 2, 1]


def test_healthz_and_unknown_route(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "Traceback" not in page.text


def test_pages_answer_when_kafka_is_down(pipeline_config: Config) -> None:
    from image_pipeline.kafka.broker import free_port

    dead = pipeline_config.with_overrides(bootstrap_servers=f"127.0.0.1:{free_port()}")
    write_event_fixture(dead)
    app = create_app(dead, testing=True)
    client = app.test_client()
    state = json_body(client.get("/api/dashboard"))
    assert state["kafka_error"] and state["counters"]["images"] is None and len(state["items"]) == 1
    assert client.get("/messages").status_code == 503
