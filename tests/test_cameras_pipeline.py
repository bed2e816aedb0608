"""Real cameras through the whole chain on the real broker: receiver, analyzer (with its camera monitor)
and alerter as processes; an RTSP camera served by GStreamer that dies and comes back, and a video file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from devtools.rtsp import RtspServer, have_rtsp_server
from devtools.runner import PipelineProcesses
from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.config import Config
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.sim.score import iou, score_dirs
from image_pipeline.sim.synthesis import load_backgrounds, synthesize_camera
from tests.camera_support import (
    encode_clip,
    free_port,
    green_box,
    have_ffmpeg,
    intruder_scene,
    runs,
    wait_for,
)
from tests.pipeline_support import topic_values

pytestmark = [pytest.mark.kafka, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg is not installed")]


def events(cfg: Config) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(cfg.events_dir.glob("*.json"))]


def stored_truth(cfg: Config, camera_id: str) -> list[tuple[int, tuple[int, int, int, int] | None]]:
    """(seq, intruder box) of every stored image, read back from the image itself."""
    found = []
    for path in sorted((cfg.images_dir / camera_id).glob(f"{camera_id}-*.jpg")):
        image = cv2.imread(str(path))
        assert image is not None, path
        found.append((int(path.stem.rsplit("-", 1)[1]), green_box(image)))
    return found


@pytest.mark.skipif(not have_rtsp_server(), reason="python3-gi and gir1.2-gst-rtsp-server-1.0 are not installed")
def test_rtsp_camera_dies_and_comes_back_offline_then_online_and_events_are_right(
        pipeline_config: Config, tmp_path: Path) -> None:
    clip = encode_clip(intruder_scene(60, (320, 240), 15, 40), tmp_path / "gate.mp4", 10)
    server = RtspServer(clip, free_port())
    camera = CameraConfig("gate", server.url, fps=0, offline_after_s=0.5, read_timeout_s=2)
    cfg = pipeline_config.replace(cameras=(camera,))
    gate_dir = cfg.images_dir / "gate"

    def log_count(text: str) -> int:
        return receiver.output().count(text)

    with server, PipelineProcesses(cfg, tmp_path / "run") as procs:
        procs.start("alerter")
        procs.start("analyzer")
        receiver = procs.start("receiver", "--camera", "gate")
        wait_for(lambda: gate_dir.is_dir() and len(list(gate_dir.glob("*.jpg"))) >= 28, 30, "28 frames")
        server.kill()  # the camera loses power mid-intrusion
        wait_for(lambda: log_count("next try in 2 s") >= 1, 10, "a failed reconnect")
        server.start()  # back before the next try, 2 s later
        wait_for(lambda: log_count("camera=gate online") >= 2, 15, "the reconnect")
        wait_for(lambda: log_count("stream lost") >= 2, 15, "the end of the second play")
        assert procs.stop(receiver) == 0, receiver.output()
        assert procs.wait_drained(timeout=60), "pipeline did not drain"
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    assert "Traceback" not in receiver.output()

    states = [v["state"] for v in topic_values(cfg, cfg.topics.camera_status.name) if v["camera_id"] == "gate"]
    first_online = states.index("online")
    back = states.index("offline", first_online)
    assert "online" in states[back:], states

    recorded = events(cfg)
    [offline] = [e for e in recorded if e["event_type"] == "offline"]
    assert offline["status"] == "closed" and offline["online_again_at"] > offline["offline_since"]
    alert = json.loads((cfg.alerts_dir / f"{offline['event_id']}.json").read_text())
    assert alert["summary"].startswith("Camera gate offline since ")

    # The events for the frames it got: every intruder run has an intrusion event whose boxes overlap it,
    # and no event of another type was raised.
    truth = stored_truth(cfg, "gate")
    boxes = {seq: box for seq, box in truth if box is not None}
    true_runs = [(truth[a][0], truth[b - 1][0]) for a, b in runs([box is not None for _, box in truth]) if b - a >= 3]
    intrusions = [e for e in recorded if e["event_type"] == "intrusion"]
    assert {e["event_type"] for e in recorded} == {"intrusion", "offline"}, recorded
    assert len(true_runs) == 2 and len(intrusions) == 2, (true_runs, [e["event_id"] for e in intrusions])
    for (first, last), event in zip(true_runs, sorted(intrusions, key=lambda e: e["first_seq"]), strict=True):
        assert first <= event["first_seq"] <= first + 2 and event["last_seq"] <= last, (first, last, event)
        overlaps = [iou(tuple(b), boxes[f["seq"]]) for f in event["frames"] if f["seq"] in boxes for b in f["boxes"]]
        assert overlaps and min(overlaps) >= 0.3, overlaps


def test_a_video_file_runs_through_receiver_analyzer_and_alerter_to_the_truth(
        pipeline_config: Config, tmp_path: Path) -> None:
    frames, size = 150, (320, 240)
    backgrounds = load_backgrounds(pipeline_config.originals_dir)
    # The simulator's script for this camera: an intrusion, a tamper, a scene change and a lighting change.
    synthesized = list(synthesize_camera("lobby", frames, 3, size, backgrounds))
    clip = encode_clip([f.image for f in synthesized], tmp_path / "lobby.mp4", 10)
    cfg = pipeline_config.replace(cameras=(CameraConfig("lobby", str(clip), fps=5),))

    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        procs.start("alerter")
        procs.start("analyzer")
        receiver = procs.run("receiver", "--camera", "lobby", "--fps", "0", timeout=120)
        assert receiver.process.returncode == 0, receiver.output()
        assert procs.wait_drained(timeout=60), "pipeline did not drain"
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes

    # --fps 0: every frame of the file, so image seq i is frame i and the simulator's truth applies.
    assert len(list((cfg.images_dir / "lobby").glob("*.jpg"))) == frames
    with (cfg.images_dir / "ground_truth.jsonl").open("w", encoding="utf-8") as out:
        for frame in synthesized:
            row = {"image_id": image_id_for("lobby", frame.seq), "camera_id": "lobby", "seq": frame.seq,
                   "truth": [t.to_dict() for t in frame.truth]}
            out.write(json.dumps(row) + "\n")
    report = score_dirs(cfg.images_dir, cfg.events_dir).to_dict()
    for kind in ("intrusion", "tamper", "scene_change", "lighting_change"):
        counts = report["types"][kind]
        assert counts["true_episodes"] >= 1 and counts["recall"] == 1.0 and counts["precision"] == 1.0, report
    assert report["spurious_intrusions"] == 0, report
    assert sorted(p.stem for p in cfg.alerts_dir.glob("*.json")) == sorted(
        e["event_id"] for e in events(cfg) if e["score"] >= 0.5)
