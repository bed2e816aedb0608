"""Camera wall, camera timeline and event playback through the Flask test client and the real broker."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import CameraStatus
from image_pipeline.web import playback
from image_pipeline.web.wall import SILENT_AFTER_S, start_of_today
from tests.wall_support import write_episode, write_frame
from tests.web_support import image_bytes, json_body, write_event_fixture

pytestmark = pytest.mark.kafka


def _tiles(client: FlaskClient) -> dict[str, dict]:
    return {t["camera_id"]: t for t in json_body(client.get("/api/cameras"))["cameras"]}


def test_landing_page_is_the_wall_and_links_the_dashboard(client: FlaskClient) -> None:
    landing = client.get("/")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/cameras")
    wall = client.get("/cameras")
    assert wall.status_code == 200 and 'href="/dashboard"' in wall.text
    assert "No cameras yet" in wall.text
    assert client.get("/dashboard").status_code == 200


def test_tiles_show_latest_frame_status_last_event_and_todays_counts(
    client: FlaskClient, pipeline_config: Config
) -> None:
    cfg = pipeline_config
    now = time.time()
    for seq in (101, 102, 103):  # after the fixture events' own frames (seq 11 to 31)
        write_frame(cfg, "cam-a", seq, now - 104 + seq)
    (cfg.images_dir / "cam-a" / "cam-a-00000103.thumb.jpg").write_bytes(image_bytes())
    write_frame(cfg, "cam-b", 7, now - 100)
    write_event_fixture(cfg, "cam-a", "tamper", 1, started_at=start_of_today(now) - 3600)  # yesterday
    recent = max(now - 5, start_of_today(now))  # still today a few seconds after midnight
    write_event_fixture(cfg, "cam-a", "intrusion", 2, started_at=recent)
    write_event_fixture(cfg, "cam-a", "intrusion", 3, started_at=recent + 1, with_alert=False)
    tiles = _tiles(client)
    a, b = tiles["cam-a"], tiles["cam-b"]
    assert a["frame"]["image_id"] == "cam-a-00000103"
    assert a["frame"]["url"] == "image_database/cam-a/cam-a-00000103.thumb.jpg", "the thumbnail is preferred"
    assert b["frame"]["url"] == "image_database/cam-b/cam-b-00000007.jpg", "else the original"
    assert client.get("/data/" + a["frame"]["url"]).status_code == 200
    assert a["frame"]["captured_at"] == pytest.approx(now - 1, abs=0.002)
    assert a["status"]["state"] == "online" and a["status"]["source"] == "frames"
    assert b["status"]["state"] == "silent" and b["status"]["label"] == "silent for 100 s"
    assert a["last_event"]["event_id"] == "cam-a-intrusion-000003"
    assert a["today"] == {"events": 2, "alerts": 1, "by_type": {"intrusion": 2}}
    assert b["last_event"] is None and b["today"]["events"] == 0
    page = client.get("/cameras").text
    assert 'data-camera-id="cam-a"' in page and 'data-image-id="cam-a-00000103"' in page
    assert 'href="/cameras/cam-a"' in page


def test_status_comes_from_the_camera_status_topic_when_a_camera_sends_one(
    client: FlaskClient, pipeline_config: Config
) -> None:
    cfg = pipeline_config
    now = time.time()
    write_frame(cfg, "gate", 5, now - 60)
    write_frame(cfg, "lobby", 9, now - 300)
    producer = make_producer(cfg, "test-wall-status")
    topic = cfg.topics.camera_status.name
    for status in (
        CameraStatus("gate", "offline", now - 30, "rtsp", 9, 5, 4, 2, now - 60, "gate-00000005", 30.0,
                     "stream lost", reported_at=now - 30),
        CameraStatus("lobby", "online", now - 400, "rtsp", 9, 9, 0, 0, now - 2, "lobby-00000009", 30.0,
                     reported_at=now - 2),
        CameraStatus("yard", "online", now - 400, "rtsp", 9, 9, 0, 0, now - 2 * SILENT_AFTER_S, None, 30.0,
                     reported_at=now - 1),
    ):
        producer.send(topic, key=status.camera_id.encode(), value=status.encode())
    producer.flush()
    producer.close()
    tiles = _tiles(client)
    assert tiles["gate"]["status"] == {"state": "offline", "label": "offline: stream lost",
                                       "source": "camera-status", "silent_s": None}
    assert tiles["lobby"]["status"]["state"] == "online", "the status's last frame is newer than the stored one"
    assert tiles["yard"]["status"]["state"] == "silent" and tiles["yard"]["frame"] is None


def test_wall_never_reads_outside_the_image_database(
    client: FlaskClient, pipeline_config: Config, tmp_path: Path
) -> None:
    cfg = pipeline_config
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil-00000001.jpg").write_bytes(image_bytes())
    cfg.images_dir.mkdir(parents=True, exist_ok=True)
    (cfg.images_dir / "evil").symlink_to(outside, target_is_directory=True)
    (cfg.images_dir / "bad name").mkdir()
    tiles = _tiles(client)
    assert tiles["evil"]["frame"] is None, "a symlinked camera folder leading outside is not read"
    assert "bad name" not in tiles
    assert client.get("/cameras/..%2F..%2Fetc").status_code == 404
    assert client.get("/api/cameras/bad%20name/timeline").status_code == 404


def test_timeline_places_events_on_an_axis_and_filters_by_type(
    client: FlaskClient, pipeline_config: Config
) -> None:
    cfg = pipeline_config
    t0 = 1_795_484_000.0
    write_event_fixture(cfg, "cam-a", "intrusion", 1, started_at=t0)
    write_event_fixture(cfg, "cam-a", "tamper", 2, started_at=t0 + 60)
    write_event_fixture(cfg, "cam-a", "intrusion", 3, started_at=t0 + 119)
    write_event_fixture(cfg, "cam-b", "intrusion", 4, started_at=t0 + 30)
    line = json_body(client.get("/api/cameras/cam-a/timeline"))
    assert [e["event_id"] for e in line["events"]] == [
        "cam-a-intrusion-000001", "cam-a-tamper-000002", "cam-a-intrusion-000003"]
    lefts = [e["left"] for e in line["events"]]
    assert 0 < lefts[0] < 5 and 95 < lefts[2] < 100 and lefts[1] == pytest.approx(sum(lefts[::2]) / 2, abs=0.5)
    assert all(e["left"] + e["width"] <= 100 for e in line["events"]), "the last mark stays on the axis"
    assert line["types"] == ["intrusion", "tamper"] and line["ticks"][-1]["left"] == 100.0
    only = json_body(client.get("/api/cameras/cam-a/timeline?type=tamper"))
    assert [e["event_id"] for e in only["events"]] == ["cam-a-tamper-000002"]
    page = client.get("/cameras/cam-a?type=intrusion").text
    assert page.count('class="mark type-intrusion"') == 2 and "cam-a-tamper-000002" not in page
    assert "cam-b-intrusion-000004" not in client.get("/cameras/cam-a").text


def test_playback_lists_the_episode_frames_in_order_with_boxes(client: FlaskClient, pipeline_config: Config) -> None:
    cfg = pipeline_config
    t0 = time.time() - 10
    for seq in range(10, 15):
        write_frame(cfg, "cam-a", seq, t0 + (seq - 10) * 0.2)
    write_frame(cfg, "cam-a", 30, t0 + 5)  # after the episode: not played
    write_episode(cfg, "cam-a", "intrusion", 1, 10, 14, t0, hits={12: [[10, 10, 20, 15]], 13: [[12, 10, 20, 15]]})
    body = json_body(client.get("/api/events/cam-a-intrusion-000001/playback"))
    frames = body["frames"]
    assert [f["seq"] for f in frames] == [10, 11, 12, 13, 14]
    assert [f["delay_ms"] for f in frames] == [200, 200, 200, 200, 50]
    assert frames[2]["boxes"] == [[10, 10, 20, 15]] and frames[0]["boxes"] == []
    jpeg = client.get(frames[2]["url"])
    assert jpeg.status_code == 200 and jpeg.mimetype == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR)
    assert drawn is not None and drawn.shape == (60, 80, 3)
    assert client.get("/events/cam-a-intrusion-000001/frames/5.jpg").status_code == 404
    assert client.get("/api/events/no-such-event/playback").status_code == 404


def test_playback_builds_paths_from_checked_ids_only(client: FlaskClient, pipeline_config: Config) -> None:
    cfg = pipeline_config
    write_frame(cfg, "cam-a", 1, time.time())
    record = write_episode(cfg, "cam-a", "intrusion", 2, 1, 1, time.time())
    record.update(camera_id="../../etc", frames=[{"seq": "../x", "boxes": "nope"}])
    (cfg.events_dir / "cam-a-intrusion-000002.json").write_text(__import__("json").dumps(record))
    assert json_body(client.get("/api/events/cam-a-intrusion-000002/playback"))["frames"] == []
    assert client.get("/events/cam-a-intrusion-000002/clip.mp4").status_code == 404
    assert client.get("/events/..%2F..%2Fetc%2Fpasswd/clip.mp4").status_code == 404
    assert client.get("/events/..%2Fx/frames/0.jpg").status_code == 404


def test_playback_is_bounded_in_frames(pipeline_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = pipeline_config
    monkeypatch.setattr(playback, "MAX_PLAYBACK_FRAMES", 20)
    for seq in range(60):
        write_frame(cfg, "cam-a", seq, 1_795_484_000 + seq * 0.1, size=(16, 12))
    record = write_episode(cfg, "cam-a", "intrusion", 1, 0, 59, 1_795_484_000.0,
                           hits={s: [[0, 0, 2, 2]] for s in range(0, 60, 2)})
    frames = playback.episode_frames(cfg, record)
    assert len(frames) == 20, "a long episode is thinned to its hit frames, then evenly"
    assert all(f.seq % 2 == 0 for f in frames) and frames == sorted(frames, key=lambda f: f.seq)


def _read_mp4(data: bytes, folder: Path) -> list[np.ndarray]:
    path = folder / "clip.mp4"
    path.write_bytes(data)
    capture = cv2.VideoCapture(str(path))
    frames = []
    for _ in range(10_000):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_clip_is_an_mp4_at_capture_pace_and_bounded(
    client: FlaskClient, pipeline_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = pipeline_config
    t0 = time.time() - 10
    for seq in range(4):
        write_frame(cfg, "cam-a", seq, t0 + seq * 0.3)
    write_episode(cfg, "cam-a", "intrusion", 1, 0, 3, t0, hits={1: [[5, 5, 20, 20]]})
    response = client.get("/events/cam-a-intrusion-000001/clip.mp4")
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    assert 'filename=cam-a-intrusion-000001.mp4' in response.headers["Content-Disposition"]
    frames = _read_mp4(response.data, tmp_path)
    # 10 fps: three gaps of 0.3 s are 3 frames each, the last frame once.
    assert len(frames) == 10 and frames[0].shape == (60, 80, 3)
    monkeypatch.setattr(playback, "MAX_CLIP_OUTPUT_FRAMES", 4)
    assert len(_read_mp4(client.get("/events/cam-a-intrusion-000001/clip.mp4").data, tmp_path)) == 4
