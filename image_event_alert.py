#!/usr/bin/env python3
"""Match events against subscriptions and write alerts to image_event_alerts/."""

import sys

from image_pipeline.stages.alerting import main

if __name__ == "__main__":
    sys.exit(main())
