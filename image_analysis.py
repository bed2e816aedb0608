#!/usr/bin/env python3
"""Detect events in announced images and write them to image_event_database/."""

import sys

from image_pipeline.stages.analysis import main

if __name__ == "__main__":
    sys.exit(main())
