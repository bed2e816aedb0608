"""Start the thumbnails consumer: a grayscale copy and a thumbnail of every announced image."""

from __future__ import annotations

import sys

from image_pipeline.stages.thumbnails import main

if __name__ == "__main__":
    sys.exit(main())
