#!/usr/bin/env python3
"""Deliver alerts by webhook and e-mail from the deliveries topic, with retries and dead letters."""

import sys

from image_pipeline.delivery.worker import main

if __name__ == "__main__":
    sys.exit(main())
