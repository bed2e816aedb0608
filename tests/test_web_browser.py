"""Headless Chromium (Playwright) over the real web server: dashboard, live updates, event viewer, screenshots.

Chromium is Debian's /usr/bin/chromium; no browser is ever downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.runner import PipelineProcesses
from image_pipeline.config import PROJECT_ROOT, Config
from image_pipeline.web import create_app
from tests.web_support import ServedApp, http_upload, wait_http, write_event_fixture

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page at a desktop size; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert not errors, errors


def natural_widths(page: Any, selector: str) -> list[int]:
    """naturalWidth of every matching image, after each finished loading."""
    page.wait_for_function(
        "sel => Array.from(document.querySelectorAll(sel)).every(i => i.complete)", arg=selector
    )
    widths: list[int] = page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")
    return widths


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under the git-ignored test-artifacts/ folder."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


def test_dashboard_updates_live_and_viewer_images_load(page: Any, pipeline_config: Config) -> None:
    cfg = pipeline_config
    served = ServedApp(create_app(cfg))
    try:
        write_event_fixture(cfg, "cam-01", "intrusion", 1, started_at=time.time() - 60, alert_id="A-3f9c2b1e")
        page.goto(served.base_url + "/dashboard")
        assert page.locator("li.event").count() == 1
        # Written while the page is open: the page picks it up without a reload.
        write_event_fixture(cfg, "cam-02", "tamper", 2, summary="<img src=x onerror=alert(1)>")
        page.wait_for_selector('li.event[data-event-id="cam-02-tamper-000002"]')
        ids = page.eval_on_selector_all("li.event", "els => els.map(e => e.dataset.eventId)")
        assert ids == ["cam-02-tamper-000002", "cam-01-intrusion-000001"], "newest first"
        assert "<img src=x" in page.inner_text("#events"), "a summary is shown as text, not HTML"
        assert page.inner_text("#count-events") == "2"
        assert all(w > 0 for w in natural_widths(page, "li.event img.thumb"))

        page.select_option("#filter-type", "intrusion")
        page.wait_for_function("() => document.querySelectorAll('li.event').length === 1")
        assert "type=intrusion" in page.url

        page.fill("#lookup-box", "A-3f9c2b1e")
        page.press("#lookup-box", "Enter")
        page.wait_for_url("**/events/cam-01-intrusion-000001")
        widths = natural_widths(page, ".frames img")
        assert len(widths) == 4 and all(w > 0 for w in widths), widths
        screenshot(page, "viewer-fixture.png")

        response = page.goto(served.base_url + "/events/cam-09-intrusion-000404")
        assert response.status == 404
        assert "No event or alert" in page.inner_text("#not-found")
    finally:
        served.close()


def _wait_for_event(page: Any, event_type: str, timeout_s: float) -> str:
    """Wait (without reloading) until the dashboard lists an event of this type; returns its id."""
    selector = f'li.event[data-event-id*="-{event_type}-"]'
    page.wait_for_selector(selector, timeout=timeout_s * 1000)
    event_id: str = page.get_attribute(selector, "data-event-id")
    return event_id


@pytest.mark.slow
def test_uploaded_frames_become_an_event_on_the_dashboard(page: Any, pipeline_config: Config, tmp_path: Path) -> None:
    from image_pipeline.kafka.broker import free_port
    from image_pipeline.sim.synthesis import load_backgrounds, synthesize_camera
    from image_pipeline.vision.imaging import encode_jpeg

    cfg = pipeline_config
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    frames = list(synthesize_camera("cam-01", 40, 2, (320, 240), load_backgrounds(cfg.originals_dir)))
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        log = (tmp_path / "run" / "web.log").open("wb")
        web = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "web_server.py"), "--config", str(procs.config_path),
             "--port", str(port)],
            cwd=PROJECT_ROOT, env=procs.env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_http(base + "/healthz")
            procs.start("thumbnails")
            procs.start("analyzer")
            procs.start("alerter")
            page.goto(base + "/dashboard")
            assert page.inner_text("#count-images") == "0"
            # The first frame goes through the page's own upload form, the rest over plain HTTP.
            page.set_input_files("#upload-file", files=[{
                "name": "first.jpg", "mimeType": "image/jpeg", "buffer": encode_jpeg(frames[0].image),
            }])
            page.fill("#upload-camera", "gate")
            page.click("#upload-form button")
            page.wait_for_function("() => document.getElementById('upload-result').dataset.status === '201'")
            for frame in frames[1:]:
                status, body = http_upload(base, encode_jpeg(frame.image), "gate")
                assert status == 201, body
            # Seed 2 scripts one person walking through frames 10-31 of 40.
            event_id = _wait_for_event(page, "intrusion", timeout_s=90)
            assert event_id.startswith("gate-intrusion-")
            page.wait_for_function("() => document.getElementById('count-images').textContent === '40'")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('li.event img.thumb'))"
                ".every(i => i.complete && i.naturalWidth > 0)",
                timeout=30_000,
            )
            page.wait_for_selector(f'li.event[data-event-id="{event_id}"] .alert-line', timeout=30_000)

            # Two synthetic cameras with every kind of happening join the uploads.
            receiver = procs.run("receiver", "--cameras", "2", "--frames", "100", "--fps", "0",
                                 "--size", "320x240", "--seed", "5")
            assert receiver.process.returncode == 0, receiver.output()
            several_types = (
                "() => new Set(Array.from(document.querySelectorAll('li.event'))"
                ".map(li => li.dataset.eventId.split('-').slice(-2, -1)[0])).size >= 3"
            )
            page.wait_for_function(several_types, timeout=90_000)
            page.select_option("#filter-type", "intrusion")
            page.wait_for_function(
                "() => { const items = Array.from(document.querySelectorAll('li.event'));"
                " return items.length > 0 && items.every(li => li.dataset.eventId.includes('-intrusion-')); }"
            )
            page.select_option("#filter-type", "")
            page.wait_for_function(several_types)
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('li.event img.thumb'))"
                ".every(i => i.complete && i.naturalWidth > 0)",
                timeout=30_000,
            )
            dashboard_png = screenshot(page, "dashboard.png")

            page.click(f'li.event[data-event-id="{event_id}"] a.event-link')
            page.wait_for_url(f"**/events/{event_id}")
            widths = natural_widths(page, ".frames img")
            assert len(widths) >= 3 and all(w > 0 for w in widths), widths
            assert page.inner_text("#event-id") == event_id
            screenshot(page, "event-viewer.png")
            assert dashboard_png.stat().st_size > 10_000
        finally:
            web.terminate()
            web.wait(timeout=20)
            log.close()
            procs.stop_all()
    for derived in ("gray", "thumb"):
        assert len(list((cfg.images_dir / "gate").glob(f"*.{derived}.jpg"))) == 40

