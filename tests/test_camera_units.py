"""Camera pieces without I/O: source kinds, the camera list's validation, sampling, backoff, the status
schema, the watchdog, and the monitor step that turns an outage into an `offline` event."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from image_pipeline.cameras.sampling import Sampler, backoff_s
from image_pipeline.cameras.settings import CameraConfig, SourceError, SourceKind, source_kind
from image_pipeline.cameras.status import CameraHealth, StatusPublisher
from image_pipeline.config import ConfigError, load_config
from image_pipeline.messages import CameraStatus, EventMessage, MessageError
from image_pipeline.model import VISUAL_EVENT_TYPES, EventType
from image_pipeline.stages.alerting import summary_of
from image_pipeline.stages.camera_monitor import CameraMonitorStep
from image_pipeline.stages.step import Source


@pytest.mark.parametrize(("source", "kind"), [
    ("synthetic", SourceKind.SYNTHETIC), ("rtsp://127.0.0.1:8554/gate", SourceKind.RTSP),
    ("http://cam.local/video.mjpg", SourceKind.HTTP), ("HTTPS://cam/x", SourceKind.HTTP),
    ("/videos/lobby.mp4", SourceKind.FILE), ("clip.AVI", SourceKind.FILE), ("file:///v/a.mkv", SourceKind.FILE),
    ("/srv/shots", SourceKind.FOLDER), ("shots/", SourceKind.FOLDER),
])
def test_the_source_kind_comes_from_the_url_or_path(source: str, kind: SourceKind) -> None:
    assert source_kind(source) is kind


@pytest.mark.parametrize(("source", "message"), [
    ("ftp://x/y.mp4", "unknown scheme ftp:// in 'ftp://x/y.mp4' (known: rtsp, http, https, file)"),
    ("/videos/lobby.mov", "unknown extension .mov in '/videos/lobby.mov' (known: .mp4, .avi, .mkv, a folder,"
                          " rtsp://, http(s):// or synthetic)"),
])
def test_an_unknown_scheme_or_extension_is_one_line(source: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        source_kind(source)
    assert str(caught.value) == message


def write_cameras(tmp_path: Path, cameras: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"cameras:\n{cameras}", encoding="utf-8")
    return path


@pytest.mark.parametrize(("entry", "error"), [
    ("  - {id: gate, source: 'gopher://x'}", "cameras[0].source: unknown scheme gopher://"),
    ("  - {id: gate, source: a.mp4, fps: -1}", "cameras[0].fps: must be between 0.0 and 1000.0, got -1.0"),
    ("  - {id: gate, source: a.mp4, size: big}", "cameras[0].size: expected WIDTHxHEIGHT"),
    ("  - {id: 'a/b', source: a.mp4}", "cameras[0].id: not a camera id"),
    ("  - {id: gate, source: a.mp4}\n  - {id: gate, source: b.mp4}", "cameras[1].id: camera gate is listed twice"),
    ("  - {id: gate, source: a.mp4, colour: red}", "config.cameras[0].colour: unknown key"),
])
def test_a_bad_camera_entry_is_one_line_naming_the_key(tmp_path: Path, entry: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_cameras(tmp_path, entry + "\n"), env={})
    assert str(caught.value).startswith(error), caught.value


def test_a_camera_list_loads_with_its_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_cameras(tmp_path, "  - {id: gate, source: 'rtsp://127.0.0.1:8554/gate', fps: 5,"
                                              " size: 640x480, jpeg_quality: 80}\n"), env={})
    assert cfg.cameras == (CameraConfig("gate", "rtsp://127.0.0.1:8554/gate", 5.0, "640x480", 80, 30.0, 10.0),)


def test_the_sampler_keeps_one_frame_per_period_of_a_25_fps_stream() -> None:
    sampler = Sampler(5)
    kept = [i for i in range(100) if sampler.keep(i / 25)]
    assert kept == list(range(0, 100, 5))
    assert all(Sampler(0).keep(i / 25) for i in range(10))


def test_the_sampler_does_not_burst_after_a_stall() -> None:
    sampler = Sampler(5)
    assert sampler.keep(0.0) and not sampler.keep(0.1)
    assert sampler.keep(10.0)  # a reconnect 10 s later: one frame, then the period again
    assert not sampler.keep(10.04) and not sampler.keep(10.1) and sampler.keep(10.2)


def test_backoff_doubles_from_one_second_and_is_capped_at_30() -> None:
    assert [backoff_s(a) for a in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_s(10_000) == 30


def test_camera_status_round_trips_and_checks_its_fields() -> None:
    status = CameraStatus("gate", "offline", 1795484100.0, "rtsp", 10, 2, 8, 1, 1795484099.5, "gate-00000001",
                          30.0, "stream lost")
    assert CameraStatus.decode(status.encode()) == status
    bad = {**json.loads(status.encode()), "state": "sleeping"}
    with pytest.raises(MessageError, match="bad camera-status message: state must be one of"):
        CameraStatus.decode(json.dumps(bad).encode())


def test_the_watchdog_marks_a_camera_whose_read_hangs_offline() -> None:
    camera = CameraConfig("gate", "rtsp://127.0.0.1:1/x", read_timeout_s=0.1)
    health = CameraHealth(camera)
    health.set_state("online")
    sent: list[CameraStatus] = []
    publisher = StatusPublisher([health], sent.append, heartbeat_s=3600)
    health.enter_call()
    health._busy_since = time.monotonic() - 6  # stuck in read() for 6 s, beyond 0.1 s + the 5 s grace
    publisher.tick()
    assert health.state == "offline" and "watchdog" in health.reason
    assert [s.state for s in sent] == ["offline"]


def status(state: str, at: float, since: float, camera: str = "gate", offline_after_s: float = 30.0,
           last_frame_at: float | None = None) -> CameraStatus:
    image_id = "gate-00000004" if last_frame_at else None
    reason = "" if state == "online" else "stream lost"
    return CameraStatus(camera, state, since, "rtsp", 5, 5, 0, 0, last_frame_at, image_id, offline_after_s, reason,
                        reported_at=at)


def events_of(outputs: object) -> list[EventMessage]:
    return [EventMessage.decode(send.value) for send in outputs.sends]  # type: ignore[attr-defined]


def test_an_outage_longer_than_offline_after_s_is_one_offline_event_closed_when_frames_return(
        tmp_path: Path) -> None:
    cfg = load_config().with_overrides(data_dir=str(tmp_path))
    step = CameraMonitorStep(cfg)
    src = Source("camera-status", 0, 0)
    t0 = 1795484000.0
    assert not step.apply(status("online", t0, t0, last_frame_at=t0), src)
    assert not step.apply(status("offline", t0 + 5, t0 + 5, last_frame_at=t0 + 4), src)
    assert not step.apply(status("offline", t0 + 30, t0 + 5, last_frame_at=t0 + 4), src)  # 25 s down: not yet
    started = step.apply(status("offline", t0 + 36, t0 + 5, last_frame_at=t0 + 4), src)
    [start] = events_of(started)
    assert (start.phase, start.event_type, start.event_id) == ("start", "offline", f"gate-offline-{int(t0 + 5)}")
    assert start.key_image_id == "gate-00000004" and start.captured_at == t0 + 5
    record = json.loads(started.writes[-1].data)
    assert record["status"] == "open" and record["reason"] == "stream lost"
    assert not step.apply(status("offline", t0 + 41, t0 + 5, last_frame_at=t0 + 4), src)  # one event, not two
    [end] = events_of(step.apply(status("online", t0 + 50, t0 + 49, last_frame_at=t0 + 49), src))
    assert (end.phase, end.event_id) == ("end", start.event_id)
    assert summary_of(start).startswith("Camera gate offline since ")


def test_the_idle_clock_opens_the_event_when_no_status_arrives(tmp_path: Path) -> None:
    step = CameraMonitorStep(load_config().with_overrides(data_dir=str(tmp_path)))
    t0 = 1795484000.0
    step.apply(status("offline", t0, t0, offline_after_s=2.0), Source("s", 0, 0))
    assert step.wants_idle_ticks() and not step.idle(0, 1.0)
    assert [e.phase for e in events_of(step.idle(0, 2.5))] == ["start"]


def test_a_receiver_that_goes_silent_while_online_is_an_outage(tmp_path: Path) -> None:
    step = CameraMonitorStep(load_config().with_overrides(data_dir=str(tmp_path)))
    t0 = 1795484000.0
    step.apply(status("online", t0, t0, offline_after_s=2.0, last_frame_at=t0), Source("s", 0, 0))
    assert not step.idle(0, 10.0)  # within offline_after_s + three heartbeats
    [start] = events_of(step.idle(0, 18.0))
    assert start.event_id == f"gate-offline-{int(t0)}"


def test_a_camera_ended_on_purpose_is_no_outage(tmp_path: Path) -> None:
    step = CameraMonitorStep(load_config().with_overrides(data_dir=str(tmp_path)))
    t0 = 1795484000.0
    step.apply(status("ended", t0, t0, offline_after_s=1.0), Source("s", 0, 0))
    assert not step.wants_idle_ticks() and not step.idle(0, 100.0)


def test_offline_is_an_event_type_but_not_a_visual_one() -> None:
    assert EventType.OFFLINE.value == "offline" and "offline" not in VISUAL_EVENT_TYPES
    assert VISUAL_EVENT_TYPES == ("intrusion", "tamper", "scene_change", "lighting_change")
