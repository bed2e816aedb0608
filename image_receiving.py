#!/usr/bin/env python3
"""Synthesize camera images, store them in image_database/ and announce them on Kafka."""

import sys

from image_pipeline.stages.receiving import main

if __name__ == "__main__":
    sys.exit(main())
