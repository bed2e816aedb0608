"""Start and stop the RTSP stand-in camera (devtools/rtsp_server.py) from the venv: tests and the benchmark."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from image_pipeline.config import PROJECT_ROOT

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi; the venv has no GObject bindings


def have_rtsp_server() -> bool:
    """Whether Debian's python3-gi and gst-rtsp-server are installed for /usr/bin/python3."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RtspServer:
    """GStreamer's RTSP server on 127.0.0.1 serving one H.264 .mp4 at /cam; each client gets it from the start."""

    def __init__(self, clip: Path, port: int) -> None:
        self.clip = clip
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait for its "ready" line."""
        script = str(PROJECT_ROOT / "devtools" / "rtsp_server.py")
        self.process = subprocess.Popen([SYSTEM_PYTHON, script, str(self.clip), str(self.port)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError(f"the RTSP server did not start: {line.decode(errors='replace').strip()}")

    def kill(self) -> None:
        """Kill it the hard way, as a camera losing power."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()
