"""Pure OpenCV on numpy frames: image validation, detectors, episodes. No Kafka, no disk."""
