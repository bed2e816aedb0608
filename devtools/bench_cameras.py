"""make bench, cameras: the receiver's CPU per camera to ingest an H.264 RTSP stream at 25 fps sampled to 5 fps.

A clip of the simulator's scenes (people walking, sensor noise) is encoded with libx264 at 25 fps
and served by GStreamer's RTSP server (devtools/rtsp.py), each camera pulling its own session. The
receiver runs as a process with --cameras-from-config against the benchmark's broker; its CPU time
over a window after every camera is online, divided by the window and the cameras, is the cost of
one camera: decoding every frame, keeping one in five, JPEG-encoding, storing and announcing it.
The RTSP server's own CPU is not counted: a real camera encodes in its own hardware.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from devtools.bench_runs import proc_cpu_s
from devtools.rtsp import RtspServer, free_tcp_port, have_rtsp_server
from devtools.runner import PipelineProcesses, isolated_config
from image_pipeline.cameras.settings import CameraConfig
from image_pipeline.config import Config
from image_pipeline.sim.synthesis import load_backgrounds, synthesize_camera

STREAM_FPS = 25
SAMPLE_FPS = 5


@dataclasses.dataclass(frozen=True)
class CameraPlan:
    """Which ingest runs to make: (size, cameras) pairs, each measured over window_s."""

    runs: tuple[tuple[tuple[int, int], int], ...]
    window_s: float
    warmup_s: float = 2.0


FULL_CAMERAS = CameraPlan(runs=(((640, 480), 1), ((640, 480), 4), ((1280, 720), 1), ((1280, 720), 2)), window_s=8.0)
SMOKE_CAMERAS = CameraPlan(runs=(((320, 240), 1),), window_s=2.0, warmup_s=1.0)


def make_clip(size: tuple[int, int], seconds: float, path: Path, backgrounds: list[Any], seed: int) -> Path:
    """The simulator's frames of one camera, H.264 at 25 fps with a key frame every 2 s, as IP cameras send."""
    count = round(seconds * STREAM_FPS)
    frames = synthesize_camera("bench", count, seed, size, backgrounds)
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{size[0]}x{size[1]}", "-r", str(STREAM_FPS), "-i", "-", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "23", "-g", str(2 * STREAM_FPS), str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as encoder:
        assert encoder.stdin is not None
        for frame in frames:
            encoder.stdin.write(frame.image.tobytes())
        encoder.stdin.close()
        if encoder.wait(timeout=300) != 0:
            raise RuntimeError(f"ffmpeg could not encode {path}")
    return path


def ingest_run(base: Config, root: Path, server: RtspServer, size: tuple[int, int], cameras: int,
               plan: CameraPlan) -> dict[str, Any]:
    """One receiver reading `cameras` sessions of the stream; its CPU share per camera over the window."""
    cams = tuple(CameraConfig(f"cam-{i + 1:02d}", server.url, fps=SAMPLE_FPS, read_timeout_s=5) for i in range(cameras))
    cfg = isolated_config(base, root).replace(cameras=cams)
    with PipelineProcesses(cfg, root) as procs:
        duration = plan.warmup_s + plan.window_s + 30  # a bound: the run stops it after the window
        receiver = procs.start("receiver", "--cameras-from-config", "--duration", f"{duration:g}")
        deadline = time.monotonic() + 30
        while receiver.output().count(" online: ") < cameras:
            if time.monotonic() > deadline or receiver.process.poll() is not None:
                raise RuntimeError(f"cameras did not come online:\n{receiver.output()[-1500:]}")
            time.sleep(0.1)
        time.sleep(plan.warmup_s)
        images_before = _images(cfg)
        cpu_before, began = proc_cpu_s(receiver.process.pid), time.monotonic()
        time.sleep(plan.window_s)
        cpu, elapsed = proc_cpu_s(receiver.process.pid) - cpu_before, time.monotonic() - began
        kept = _images(cfg) - images_before
        lost = receiver.output().count("stream lost")
        procs.stop(receiver)
    share = cpu / elapsed / cameras
    return {"size": f"{size[0]}x{size[1]}", "cameras": cameras, "window_s": round(elapsed, 2),
            "cpu_share_per_camera": round(share, 4), "cameras_per_core": round(1 / share, 1) if share else 0.0,
            "kept_fps_per_camera": round(kept / elapsed / cameras, 2), "streams_lost": lost}


def _images(cfg: Config) -> int:
    return sum(1 for _ in cfg.images_dir.glob("cam-*/*.jpg"))


def measure_cameras(cfg: Config, workdir: Path, plan: CameraPlan, seed: int) -> dict[str, Any]:
    """Every ingest run of the plan; {"skipped": why} without ffmpeg or the GStreamer RTSP server."""
    if shutil.which("ffmpeg") is None or not have_rtsp_server():
        return {"skipped": "ffmpeg or GStreamer's RTSP server is not installed (.ci/run installs them)"}
    backgrounds = load_backgrounds(cfg.originals_dir)
    seconds = plan.warmup_s + plan.window_s + 4  # the clip outlasts the window: no reconnect inside it
    clips = {size: make_clip(size, seconds, workdir / f"clip-{size[0]}x{size[1]}.mp4", backgrounds, seed)
             for size in dict.fromkeys(s for s, _ in plan.runs)}
    runs = []
    for i, (size, cameras) in enumerate(plan.runs):
        with RtspServer(clips[size], free_tcp_port()) as server:
            runs.append(ingest_run(cfg, workdir / f"cameras-{i + 1:02d}", server, size, cameras, plan))
        print(f"[bench] cameras {runs[-1]}", flush=True)
    return {"stream_fps": STREAM_FPS, "sample_fps": SAMPLE_FPS, "runs": runs}


def format_cameras(report: dict[str, Any]) -> list[str]:
    """The cameras section of make bench's table."""
    if "skipped" in report:
        return [f"cameras: skipped ({report['skipped']})"]
    lines = [f"cameras (RTSP H.264 {report['stream_fps']} fps sampled to {report['sample_fps']} fps; "
             "receiver CPU per camera)"]
    for run in report["runs"]:
        lines.append(f"  {run['size']:>9} x {run['cameras']} camera(s)   {100 * run['cpu_share_per_camera']:5.1f}% "
                     f"of a core each   {run['cameras_per_core']:5.1f} cameras/core   "
                     f"kept {run['kept_fps_per_camera']:.2f} fps each   streams lost {run['streams_lost']}")
    return lines
