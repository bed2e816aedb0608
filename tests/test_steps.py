"""The pure steps in process, no broker: key-frame consistency, idle closing, resets, alerts, thumbnails."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from image_pipeline.config import Config, load_config
from image_pipeline.messages import EventMessage, ImageMessage
from image_pipeline.records.events import render_key
from image_pipeline.sim.synthesis import load_backgrounds, single_happening, synthesize_camera
from image_pipeline.stages.alerting import AlertStep, EventInput
from image_pipeline.stages.analysis import AnalysisStep, Frame
from image_pipeline.stages.step import Outputs, Source
from image_pipeline.stages.thumbnails import Original, ThumbnailStep
from image_pipeline.vision.detection import CameraDetector
from image_pipeline.vision.detector import Detection
from image_pipeline.vision.imaging import encode_jpeg

SIZE = (320, 240)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("data")
    return load_config().with_overrides(data_dir=str(root))


def intrusion_frames(camera_id: str, frames: int = 60, seed: int = 7, t0: float = 1000.0) -> list[Frame]:
    """A synthetic camera with one walker, JPEG round-tripped like stored frames, 10 fps capture times."""
    backgrounds = load_backgrounds(Path(__file__).resolve().parent.parent / "image_original")
    script = single_happening("intrusion", camera_id, 12, 36, seed)
    out = []
    for sf in synthesize_camera(camera_id, frames, seed, SIZE, backgrounds, script=script):
        data = encode_jpeg(sf.image, 90)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        out.append(Frame(camera_id, f"{camera_id}-{sf.seq:08d}", sf.seq, t0 + sf.seq / 10, image, SIZE, data))
    return out


def feed(step: AnalysisStep, frames: list[Frame], partition: int = 0) -> list[Outputs]:
    """Run frames through the step the way the runner does for a new camera."""
    outputs = []
    for i, frame in enumerate(frames):
        source = Source("images", partition, i)
        if step.needs_replay(frame):
            step.start_replay(frame, source)
        outputs.append(step.apply(frame, source))
    return outputs


def records_of(outputs: list[Outputs]) -> list[dict[str, Any]]:
    return [json.loads(w.data) for o in outputs for w in o.writes if w.path.suffix == ".json"]


def test_derived_images_always_show_the_key_frame_the_record_names(cfg: Config) -> None:
    frames = intrusion_frames("cam-key")
    by_id = {f.image_id: f for f in frames}
    step = AnalysisStep(cfg)
    disk: dict[Path, bytes] = {}
    checked: set[str] = set()
    for out in [*feed(step, frames), step.idle(0, cfg.analysis.idle_close_s)]:
        for write in out.writes:
            disk[write.path] = write.data
            if write.path.suffix != ".json":
                continue
            record = json.loads(write.data)
            key = next(f for f in record["frames"] if f["image_id"] == record["key_image_id"])
            expected = render_key(record["event_type"], record["camera_id"], key["image_id"], key["score"],
                                  tuple(tuple(b) for b in key["boxes"]), by_id[key["image_id"]].image, None)
            annotated = cfg.data_dir / record["paths"]["annotated"]
            assert disk[annotated] == expected.annotated, \
                f"the record names {record['key_image_id']} but the annotated image shows another frame"
            checked.add(record["key_image_id"])
    assert len(checked) >= 2, f"the scenario must move the key frame at least once; keys seen: {checked}"


def test_an_idle_camera_closes_on_the_capture_clock_of_its_partition(cfg: Config) -> None:
    step = AnalysisStep(dataclasses.replace(cfg, analysis=dataclasses.replace(cfg.analysis, idle_close_s=10.0)))
    walker = intrusion_frames("cam-stops", frames=30)  # it stops while the walker is still in view
    assert any(r["status"] == "open" for r in records_of(feed(step, walker)))
    assert step.cameras["cam-stops"].tracker.has_open()
    others = intrusion_frames("cam-goes-on", frames=140, seed=3, t0=1000.0)
    ended = [r for r in records_of(feed(step, others)) if r["camera_id"] == "cam-stops"]
    assert [r["status"] for r in ended] == ["closed"], "closed once, when the other camera's clock passed 10 s"
    assert not step.cameras["cam-stops"].tracker.has_open()


def test_a_quiet_partition_closes_after_verified_idle_time(cfg: Config) -> None:
    step = AnalysisStep(cfg)
    feed(step, intrusion_frames("cam-quiet", frames=30))
    assert step.wants_idle_ticks()
    assert not step.idle(0, cfg.analysis.idle_close_s - 1)
    assert not step.idle(1, 60), "another partition's idleness closes nothing here"
    closed = records_of([step.idle(0, cfg.analysis.idle_close_s + 1)])
    assert [r["status"] for r in closed] == ["closed"]
    assert not step.wants_idle_ticks()


class FailsOnWhite(CameraDetector):
    """A real detector that raises on all-white frames, to exercise the reset path."""

    def process(self, frame: np.ndarray, full_size: tuple[int, int] | None = None) -> list[Detection]:
        if frame.min() == 255:
            raise RuntimeError("detector bug on a white frame")
        return super().process(frame, full_size)


def test_a_detector_error_resets_only_that_camera(cfg: Config) -> None:
    step = AnalysisStep(cfg, FailsOnWhite)
    walker = intrusion_frames("cam-bad", frames=30)
    feed(step, walker)
    feed(step, intrusion_frames("cam-good", frames=10, seed=2))
    good_state = step.cameras["cam-good"]
    white_image = np.full((240, 320, 3), 255, np.uint8)
    white = Frame("cam-bad", "cam-bad-00000030", 30, walker[-1].captured_at + 0.1, white_image, SIZE,
                  encode_jpeg(white_image))
    with pytest.raises(RuntimeError):
        step.apply(white, Source("images", 0, 99))
    closed = records_of([step.reset(white)])
    assert [r["status"] for r in closed] == ["closed"], "the open episode is closed, not lost"
    assert step.cameras["cam-good"] is good_state
    assert step.cameras["cam-bad"].last_seq == 30 and not step.cameras["cam-bad"].tracker.has_open()
    nxt = dataclasses.replace(walker[0], image_id="cam-bad-00000031", seq=31, captured_at=white.captured_at + 0.1)
    assert not step.needs_replay(nxt), "a reset camera starts afresh instead of replaying the bad frame"
    step.apply(nxt, Source("images", 0, 100))


def event(phase: str, key: str, score: float = 0.9, event_type: str = "intrusion") -> EventMessage:
    return EventMessage(phase=phase, event_id=f"cam-01-{event_type}-000012", event_type=event_type,
                        camera_id="cam-01", score=score, first_image_id="cam-01-00000012",
                        last_image_id=key, key_image_id=key, frame_count=3,
                        record_path=f"image_event_database/cam-01-{event_type}-000012.json", captured_at=1000.0)


def test_one_alert_per_episode_and_it_follows_the_key_frame(cfg: Config) -> None:
    step = AlertStep(cfg, clock=lambda: 2000.0)
    paths = {"key_image": "image_database/cam-01/cam-01-00000012.jpg"}
    first = step.apply(EventInput(event("start", "cam-01-00000012"), paths, None), None)
    assert len(first.sends) == 1 and len(first.writes) == 2
    record = json.loads(first.writes[-1].data)
    assert record["key_image_id"] == "cam-01-00000012" and record["alerted_at"] == 2000.0
    moved = {"key_image": "image_database/cam-01/cam-01-00000020.jpg"}
    later = step.apply(EventInput(event("update", "cam-01-00000020"), moved, record), None)
    assert later.sends == [], "nobody is alerted twice for one episode"
    refreshed = json.loads(later.writes[-1].data)
    assert refreshed["key_image_id"] == "cam-01-00000020"
    assert refreshed["paths"]["key_image"] == moved["key_image"]
    assert refreshed["alert_id"] == record["alert_id"] and refreshed["alerted_at"] == 2000.0
    same = step.apply(EventInput(event("end", "cam-01-00000020"), moved, refreshed), None)
    assert not same


def test_events_nobody_subscribed_to_write_nothing(cfg: Config) -> None:
    quiet = dataclasses.replace(cfg, subscriptions=())
    assert not AlertStep(quiet).apply(EventInput(event("start", "cam-01-00000012"), {}, None), None)


def test_thumbnail_step_writes_gray_and_thumb_next_to_the_original(cfg: Config) -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    message = ImageMessage("cam-01-00000001", "cam-01", 1, "cam-01/cam-01-00000001.jpg", 64, 48, 1000.0)
    original = cfg.images_dir / message.path
    out = ThumbnailStep().apply(Original(message, original, image), None)
    assert [w.path.name for w in out.writes] == ["cam-01-00000001.gray.jpg", "cam-01-00000001.thumb.jpg"]
    assert out.sends == []
