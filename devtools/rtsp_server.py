"""A real RTSP server that clients pull from, as from an IP camera: GStreamer's gst-rtsp-server.

Run it with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0), not the venv:
    /usr/bin/python3 devtools/rtsp_server.py CLIP.mp4 PORT [MOUNT]
Each client that connects gets the H.264 clip from its start, in real time; the line "ready" on
stdout says the server listens. ffmpeg alone cannot do this: its `listen` flag only takes a pushed stream.
"""

from __future__ import annotations

import sys

import gi  # type: ignore[import-not-found, unused-ignore]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402


def main(argv: list[str]) -> int:
    """Serve argv[1] on 127.0.0.1:argv[2] at /argv[3] (default /cam) until killed."""
    clip, port = argv[1], argv[2]
    mount = "/" + (argv[3] if len(argv) > 3 else "cam").lstrip("/")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( filesrc location={clip} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )")
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
