"""Real camera stand-ins on loopback for the camera tests: clips made with ffmpeg, an HTTP MJPEG server,
and a scene whose ground truth can be read back from any frame that arrives (the RTSP server is
devtools/rtsp.py, shared with the benchmark).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from image_pipeline.model import Box

GREEN = (0, 200, 0)  # BGR: the intruder, a colour the grey scene never has


def have_ffmpeg() -> bool:
    """Whether ffmpeg (with libx264) is installed."""
    return shutil.which("ffmpeg") is not None


def encode_clip(frames: Sequence[np.ndarray], path: Path, fps: float, codec: str = "libx264",
                extra: Sequence[str] = ()) -> Path:
    """Encode BGR frames to a video file with ffmpeg (H.264 by default), one key frame a second."""
    height, width = frames[0].shape[:2]
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-c:v", codec]
    if codec == "libx264":
        command += ["-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "18", "-g", str(max(1, round(fps)))]
    command += [*extra, str(path)]
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True, timeout=120)
    return path


def scene_background(size: tuple[int, int], seed: int = 7) -> np.ndarray:
    """A static grey, textured view (smooth blobs, so H.264 keeps it steady)."""
    width, height = size
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 190, (height // 16 + 1, width // 16 + 1), dtype=np.uint8)
    grey = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def intruder_box(index: int, size: tuple[int, int], start: int, stop: int) -> Box | None:
    """Where the green intruder is in frame `index` (walking left to right), or None outside [start, stop)."""
    if not start <= index < stop:
        return None
    width, height = size
    w, h = width // 8, height // 3
    x = int((width - w) * (index - start) / max(1, stop - start - 1))
    return (x, height // 3, w, h)


def intruder_scene(count: int, size: tuple[int, int], start: int, stop: int) -> list[np.ndarray]:
    """Frames of the scene with the intruder crossing between frames start and stop."""
    background = scene_background(size)
    frames = []
    for i in range(count):
        frame = background.copy()
        box = intruder_box(i, size, start, stop)
        if box is not None:
            x, y, w, h = box
            cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), GREEN, -1)
        frames.append(frame)
    return frames


def green_box(image: np.ndarray) -> Box | None:
    """The intruder's box read back from a (decoded, compressed) frame; None when it is not there."""
    b, g, r = (image[..., i].astype(np.int16) for i in range(3))
    mask = ((g - r > 80) & (g - b > 80)).astype(np.uint8)
    if int(mask.sum()) < 50:
        return None
    x, y, w, h = cv2.boundingRect(mask)
    return (x, y, w, h)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MjpegServer:
    """A small HTTP server sending multipart/x-mixed-replace JPEG frames, as IP cameras' MJPEG streams do.

    frames(i) gives the i-th frame; None ends the stream. `silent` accepts and answers nothing.
    """

    def __init__(self, frames: Callable[[int], np.ndarray | None], fps: float = 25.0, silent: bool = False) -> None:
        self.frames = frames
        self.fps = fps
        self.silent = silent
        self.closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.serve(self)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one client: the stream, paced at fps, until the frames end or the server closes."""
        if self.silent:
            self.closing.wait(30)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        try:
            for i in range(100_000):
                frame = self.frames(i)
                if frame is None or self.closing.is_set():
                    return
                ok, jpeg = cv2.imencode(".jpg", frame)
                assert ok
                handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                handler.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg.tobytes() + b"\r\n")
                time.sleep(1 / self.fps)
        except (BrokenPipeError, ConnectionResetError):
            return

    def start(self) -> MjpegServer:
        """Listen in a background thread."""
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop listening and end every stream (the camera dies)."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        if not self.closing.is_set():
            self.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until condition() holds; fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def runs(flags: Iterator[bool] | Sequence[bool]) -> list[tuple[int, int]]:
    """[start, stop) index ranges where flags are true."""
    found, start = [], None
    items = list(flags)
    for i, flag in enumerate([*items, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            found.append((start, i))
            start = None
    return found
