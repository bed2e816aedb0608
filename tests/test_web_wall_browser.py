"""Headless Chromium (Playwright) over the real web server: the camera wall, a camera's timeline, playback, clips.

Chromium is Debian's /usr/bin/chromium; no browser is ever downloaded. Frames are synthesized scenes
stored the way the receiver stores them; camera statuses go through the test's camera-status topic.
Screenshots land in test-artifacts/; docs/camera-wall.png and docs/event-playback.png are copies of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import pytest

from image_pipeline.config import Config
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import CameraStatus
from image_pipeline.records.events import annotate
from image_pipeline.sim.synthesis import SynthFrame, load_backgrounds, synthesize_camera
from image_pipeline.web import create_app
from tests.test_web_browser import CHROMIUM, browser, natural_widths, page, screenshot  # noqa: F401 (fixtures)
from tests.wall_support import write_episode, write_frame
from tests.web_support import ServedApp

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]
SIZE = (320, 240)


def _scenes(cfg: Config, camera_id: str, count: int, seed: int) -> list[SynthFrame]:
    return list(synthesize_camera(camera_id, count, seed, SIZE, load_backgrounds(cfg.originals_dir)))


def _publish_offline(cfg: Config, camera_id: str, now: float) -> None:
    producer = make_producer(cfg, "test-wall-browser")
    status = CameraStatus(camera_id, "offline", now - 20, "rtsp", 40, 4, 36, 3, now - 25, None, 30.0,
                          "connection refused", reported_at=now - 20)
    producer.send(cfg.topics.camera_status.name, key=camera_id.encode(), value=status.encode())
    producer.flush()
    producer.close()


def _viewer_images(cfg: Config, key: SynthFrame, previous: SynthFrame, boxes: list[list[int]]) -> dict[str, str]:
    """The key, previous, difference and annotated images the event viewer shows above the playback."""
    events = cfg.paths.events
    annotated = annotate(key.image, tuple((b[0], b[1], b[2], b[3]) for b in boxes), "intrusion cam-01")
    difference = cv2.absdiff(*(cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY) for f in (key, previous)))
    cfg.events_dir.mkdir(parents=True, exist_ok=True)
    for name, image in (("annotated", annotated), ("diff", difference)):
        cv2.imwrite(str(cfg.events_dir / f"cam-01-intrusion-000001_{name}.jpg"), image)
    return {
        "key_image": f"{cfg.paths.images}/cam-01/cam-01-{key.seq:08d}.jpg",
        "previous_image": f"{cfg.paths.images}/cam-01/cam-01-{previous.seq:08d}.jpg",
        "diff": f"{events}/cam-01-intrusion-000001_diff.jpg",
        "annotated": f"{events}/cam-01-intrusion-000001_annotated.jpg",
    }


def test_wall_tiles_update_live_and_timeline_filters_by_type(page: Any, pipeline_config: Config) -> None:  # noqa: F811
    cfg = pipeline_config
    now = time.time()
    gate = _scenes(cfg, "gate", 6, 2)
    for seq, frame in enumerate(gate[:5]):
        write_frame(cfg, "gate", seq, now - 5 + seq, frame.image)
    for seq, frame in enumerate(_scenes(cfg, "lobby", 3, 7)):
        write_frame(cfg, "lobby", seq, now - 25, frame.image)
    for seq, frame in enumerate(_scenes(cfg, "yard", 3, 9)):
        write_frame(cfg, "yard", seq, now - 120, frame.image)
    _publish_offline(cfg, "lobby", now)
    for number, (kind, ago) in enumerate([("intrusion", 3000), ("tamper", 1800), ("intrusion", 600)], 1):
        write_episode(cfg, "gate", kind, number, 0, 1, now - ago)
    write_episode(cfg, "yard", "lighting_change", 4, 0, 1, now - 900)

    served = ServedApp(create_app(cfg))
    try:
        page.goto(served.base_url + "/")
        page.wait_for_url("**/cameras")
        page.evaluate("() => { window.sameDocument = true; }")
        assert page.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.cameraId)") == ["gate", "lobby", "yard"]
        assert all(w == 320 for w in natural_widths(page, ".tile img.live"))
        gate_tile = '.tile[data-camera-id="gate"]'
        assert page.get_attribute(gate_tile + " img.live", "data-image-id") == "gate-00000004"
        assert page.inner_text(gate_tile + " .status") == "online"
        assert "last: intrusion" in page.inner_text(gate_tile + " .last-event")
        assert page.inner_text(".tile[data-camera-id='lobby'] .status") == "offline: connection refused"
        assert page.inner_text(".tile[data-camera-id='yard'] .status").startswith("silent for 12")

        # A frame stored while the wall is open replaces the tile's image without a reload.
        write_frame(cfg, "gate", 5, time.time(), gate[5].image)
        page.wait_for_function(
            "() => { const i = document.querySelector('.tile[data-camera-id=\"gate\"] img.live');"
            " return i.dataset.imageId === 'gate-00000005' && i.complete && i.naturalWidth === 320; }",
            timeout=10_000,
        )
        assert page.evaluate("() => window.sameDocument") is True
        screenshot(page, "camera-wall.png")

        page.click(gate_tile)
        page.wait_for_url("**/cameras/gate")
        marks = "#timeline .mark:not([hidden])"
        assert page.locator(marks).count() == 3
        page.select_option("#timeline-type", "intrusion")
        page.wait_for_function(f"() => document.querySelectorAll('{marks}').length === 2")
        kinds = page.eval_on_selector_all(marks, "ms => ms.map(m => m.dataset.type)")
        assert kinds == ["intrusion", "intrusion"]
        assert page.locator("#timeline-list li:not([hidden])").count() == 2
        assert page.inner_text("#timeline-count") == "2 event(s)" and "type=intrusion" in page.url
        screenshot(page, "camera-timeline.png")
        page.select_option("#timeline-type", "")
        page.wait_for_function(f"() => document.querySelectorAll('{marks}').length === 3")
    finally:
        served.close()


def test_playback_advances_and_the_clip_downloads_as_mp4(
    page: Any, pipeline_config: Config, tmp_path: Path  # noqa: F811
) -> None:
    cfg = pipeline_config
    t0 = time.time() - 60
    scenes = _scenes(cfg, "cam-01", 40, 2)[10:22]  # seed 2: a person walks in from frame 11
    hits = {}
    for frame in scenes:
        write_frame(cfg, "cam-01", frame.seq, t0 + (frame.seq - 10) * 0.1, frame.image)
        boxes = [list(t.bbox) for t in frame.truth if t.bbox is not None]
        if boxes:
            hits[frame.seq] = boxes
    assert len(hits) == 11
    record = write_episode(cfg, "cam-01", "intrusion", 1, 10, 21, t0, hits=hits,
                           paths=_viewer_images(cfg, scenes[5], scenes[4], hits[scenes[5].seq]))

    served = ServedApp(create_app(cfg))
    try:
        page.goto(f"{served.base_url}/events/{record['event_id']}")
        frame_img = "#playback-frame"
        page.wait_for_function(f"() => document.querySelector('{frame_img}').naturalWidth === 320")
        first = page.get_attribute(frame_img, "data-index")
        page.wait_for_function(f"i => document.querySelector('{frame_img}').dataset.index !== i", arg=first)
        # At capture pace (0.1 s) the whole episode has played once within a few seconds, then loops.
        page.wait_for_function("() => Number(document.getElementById('playback').dataset.shown) > 12",
                               timeout=10_000)
        assert "of 12" in page.inner_text("#playback-position")
        # Paused from inside the page, so the shown frame is one with a box whatever the timer does.
        page.wait_for_function(
            "() => { const i = Number(document.getElementById('playback-frame').dataset.index);"
            " if (i < 4 || i > 8) { return false; } document.getElementById('playback-toggle').click(); return true; }"
        )
        assert page.inner_text("#playback-toggle") == "Play"
        assert "1 box(es)" in page.inner_text("#playback-position")
        assert all(w == 320 for w in natural_widths(page, ".frames img"))
        screenshot(page, "event-playback.png")

        with page.expect_download() as download_info:
            page.click("#clip-download")
        download = download_info.value
        assert download.suggested_filename == f"{record['event_id']}.mp4"
        clip = tmp_path / "clip.mp4"
        download.save_as(clip)
    finally:
        served.close()
    capture = cv2.VideoCapture(str(clip))
    shapes = []
    for _ in range(1000):
        ok, image = capture.read()
        if not ok:
            break
        shapes.append(image.shape)
    capture.release()
    assert len(shapes) == 12 and set(shapes) == {(240, 320, 3)}, "one frame per 0.1 s at 10 fps"
