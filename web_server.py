"""Start the web server: upload, recent messages, dashboard and event viewer."""

from __future__ import annotations

import sys

from image_pipeline.web.server import main

if __name__ == "__main__":
    sys.exit(main())
