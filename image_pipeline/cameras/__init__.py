"""Real cameras: sources read through OpenCV, reader threads with backoff and a watchdog, status."""
