"""Camera readers against real sources on loopback (files made with ffmpeg, an HTTP MJPEG server), no Kafka.

Every bad source gives a one-line log and an offline (or ended) status, never a traceback, and a
reader next to it keeps reading.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from image_pipeline.cameras.reader import CameraReader, ReaderLimits
from image_pipeline.cameras.run import CameraRunOptions, CameraSet
from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.cameras.sources import quiet_opencv
from image_pipeline.cameras.status import CameraHealth
from image_pipeline.config import Config, load_config
from image_pipeline.stages.publishing import Capture
from tests.camera_support import (
    MjpegServer,
    encode_clip,
    free_port,
    have_ffmpeg,
    intruder_scene,
    scene_background,
    wait_for,
)

pytestmark = pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg is not installed (.ci/run installs it)")
SIZE = (160, 120)


class Collected:
    """A reader's output and status, gathered in memory."""

    def __init__(self) -> None:
        self.captures: list[Capture] = []
        self.lock = threading.Lock()

    def emit(self, capture: Capture, _block: bool) -> bool:
        with self.lock:
            self.captures.append(capture)
        return True

    def count(self) -> int:
        with self.lock:
            return len(self.captures)


def start_reader(tmp_path: Path, camera: CameraConfig, max_frames: int | None = None
                 ) -> tuple[CameraReader, Collected, threading.Event]:
    quiet_opencv()
    cfg = load_config().with_overrides(data_dir=str(tmp_path))
    out, stop = Collected(), threading.Event()
    reader = CameraReader(camera, cfg, CameraHealth(camera), out.emit, stop, limits=ReaderLimits(max_frames))
    reader.thread.start()
    return reader, out, stop


def finish(reader: CameraReader, stop: threading.Event, timeout: float = 20) -> None:
    stop.set()
    reader.thread.join(timeout)
    assert not reader.thread.is_alive()


def decoded(capture: Capture) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(capture.data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the scene at 25 fps, H.264 in .mp4."""
    return encode_clip(intruder_scene(50, SIZE, 10, 40), tmp_path_factory.mktemp("clip") / "scene.mp4", 25)


def test_a_file_at_fps_0_gives_every_frame_as_fast_as_possible(tmp_path: Path, clip: Path) -> None:
    began = time.monotonic()
    reader, out, _stop = start_reader(tmp_path, CameraConfig("lobby", str(clip), fps=0))
    reader.thread.join(20)
    assert time.monotonic() - began < 1.5  # 2 s of video, not played in real time
    assert [c.seq for c in out.captures] == list(range(50))
    assert reader.health.state == "ended" and "end of source after 50 frames" in reader.health.reason
    assert all(c.stamped and c.source == "camera" and (c.width, c.height) == SIZE for c in out.captures)


def test_a_file_at_5_fps_keeps_every_fifth_frame_paced_in_real_time(tmp_path: Path, clip: Path) -> None:
    reader, out, _stop = start_reader(tmp_path, CameraConfig("lobby", str(clip), fps=5, size="80x60"))
    reader.thread.join(20)
    assert len(out.captures) == 10  # 50 frames at 25 fps sampled to 5 fps
    assert reader.health.frames_dropped == 40
    times = [c.captured_at for c in out.captures]
    gaps = np.diff(times)
    assert 0.15 < float(np.median(gaps)) < 0.3, gaps  # paced: one kept frame every 0.2 s of wall time
    assert all((c.width, c.height) == (80, 60) for c in out.captures)


def test_missing_file_is_one_line_offline_and_retried_with_backoff(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    reader, out, stop = start_reader(tmp_path, CameraConfig("gone", str(tmp_path / "missing.mp4")))
    wait_for(lambda: reader.health.reconnects >= 1, 5, "a second attempt after 1 s")
    finish(reader, stop)
    assert reader.health.state == "offline" and not out.captures
    lines = [r.getMessage() for r in caplog.records if "camera=gone" in r.getMessage()]
    assert lines[0] == f"camera=gone offline: no such video file: {tmp_path / 'missing.mp4'}; next try in 1 s"
    assert "next try in 2 s" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)


def test_corrupt_video_gives_its_valid_frames_then_a_one_line_warning(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    full = encode_clip(intruder_scene(100, SIZE, 10, 40), tmp_path / "whole.mkv", 25)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # valid frames, then the file stops
    reader, out, _stop = start_reader(tmp_path, CameraConfig("cut", str(cut), fps=0))
    reader.thread.join(20)
    assert 20 < len(out.captures) < 100
    assert reader.health.state == "ended" and "ended early" in reader.health.reason
    assert any("file ended early at frame" in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


def test_a_truncated_mp4_without_its_index_is_one_line_offline(tmp_path: Path) -> None:
    full = encode_clip(intruder_scene(50, SIZE, 10, 40), tmp_path / "whole.mp4", 25)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # the moov index is at the end: gone
    reader, out, stop = start_reader(tmp_path, CameraConfig("cut", str(cut), fps=0))
    wait_for(lambda: reader.health.state == "offline", 5, "offline")
    finish(reader, stop)
    assert not out.captures and reader.health.reason.startswith("cannot decode video file")


def test_http_mjpeg_stream_is_read_and_sampled(tmp_path: Path) -> None:
    background = scene_background(SIZE)
    with MjpegServer(lambda i: background, fps=25) as server:
        reader, out, _stop = start_reader(tmp_path, CameraConfig("door", server.url, fps=5), max_frames=6)
        reader.thread.join(20)
    assert len(out.captures) == 6 and reader.health.state == "ended"
    assert reader.health.frames_read >= 20  # about five read for every one kept
    gaps = np.diff([c.captured_at for c in out.captures])
    assert all(0.12 < g < 0.35 for g in gaps), gaps
    assert float(np.abs(decoded(out.captures[0]).astype(int) - background).mean()) < 3


def quadrants(size: tuple[int, int]) -> np.ndarray:
    """Red left, blue right, green bottom half: shows whether a frame was scaled whole or cropped."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)
    image[:, width // 2:] = (255, 0, 0)
    image[height // 2:] = (0, 255, 0)
    return image


def test_stream_resolution_change_midway_keeps_the_first_size_scaled_whole(tmp_path: Path) -> None:
    small, large = scene_background((160, 120)), quadrants((320, 240))
    with MjpegServer(lambda i: small if i < 10 else large, fps=50) as server:
        reader, out, _stop = start_reader(tmp_path, CameraConfig("door", server.url, fps=0), max_frames=20)
        reader.thread.join(20)
    assert len(out.captures) == 20
    assert {(c.width, c.height) for c in out.captures} == {(160, 120)}
    last = decoded(out.captures[-1])  # the new picture scaled whole (FFmpeg rescales to the opening size)
    assert last[30, 40, 2] > 200 and last[30, 120, 0] > 200 and last[90, 80, 1] > 200


def test_folder_resolution_change_is_resized_to_the_first_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), quadrants((160, 120) if i < 3 else (320, 240)))
    reader, out, _stop = start_reader(tmp_path, CameraConfig("shots", str(folder), fps=0))
    reader.thread.join(20)
    assert {(c.width, c.height) for c in out.captures} == {(160, 120)} and len(out.captures) == 6
    assert [r.getMessage() for r in caplog.records] == [
        "camera=shots resolution changed from 160x120 to 320x240; resizing to 160x120"]


def test_a_refused_url_is_offline_not_a_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    reader, _out, stop = start_reader(tmp_path, CameraConfig("gate", url, read_timeout_s=1))
    wait_for(lambda: reader.health.state == "offline", 5, "offline")
    finish(reader, stop)
    assert reader.health.reason == f"cannot connect to stream {url} (refused, timed out, or not a video)"
    assert all(r.exc_info is None for r in caplog.records)


def test_a_stream_that_connects_but_never_sends_times_out(tmp_path: Path) -> None:
    with MjpegServer(lambda i: None, silent=True) as server:
        began = time.monotonic()
        reader, _out, stop = start_reader(tmp_path, CameraConfig("mute", server.url, read_timeout_s=1))
        wait_for(lambda: reader.health.state == "offline", 5, "offline after the open timeout")
        assert time.monotonic() - began < 3
        finish(reader, stop)


def test_two_cameras_one_dies_the_other_keeps_flowing(tmp_path: Path) -> None:
    quiet_opencv()
    background = scene_background(SIZE)
    cfg: Config = load_config().with_overrides(data_dir=str(tmp_path))
    with MjpegServer(lambda i: background, fps=25) as alive, MjpegServer(lambda i: background, fps=25) as dying:
        cameras = (CameraConfig("alive", alive.url, fps=10, read_timeout_s=1),
                   CameraConfig("dying", dying.url, fps=10, read_timeout_s=1))
        stop = threading.Event()
        cameras_set = CameraSet(cfg, cameras, stop, CameraRunOptions())
        cameras_set.start()
        got: list[Capture] = []
        stream = cameras_set.captures()

        def take_until(condition: str, seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                got.append(next(stream))

        take_until("both flowing", 1.0)
        dying.close()
        died_at = time.time()
        take_until("after the death", 2.0)
        stop.set()
        cameras_set.join(5)
    health = {h.camera.id: h for h in cameras_set.healths}
    assert health["dying"].state == "offline"
    after = [c for c in got if c.captured_at > died_at + 0.5]
    assert {c.camera_id for c in after} == {"alive"}
    assert len(after) >= 10  # 10 fps for the last 1.5 s
