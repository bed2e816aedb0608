"""The pipeline's shared vocabulary: event types, boxes and detector names, each defined once."""

from __future__ import annotations

from enum import StrEnum

Box = tuple[int, int, int, int]  # x, y, width, height in full-resolution pixels


class EventType(StrEnum):
    """What the analyzer reports. A StrEnum, so members are their JSON strings."""

    INTRUSION = "intrusion"
    TAMPER = "tamper"
    SCENE_CHANGE = "scene_change"
    LIGHTING_CHANGE = "lighting_change"
    # Not seen in pixels: a camera that sent no frame for its offline_after_s (stages/camera_monitor.py).
    OFFLINE = "offline"


# Every type an event message, a subscription or the dashboard may name.
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
# What detectors find in frames and the simulator scripts, in classification order; episodes are
# advanced in this order, which keeps outputs deterministic. OFFLINE stays out, so the synthetic
# scripts (drawn from a permutation of this tuple) and the score tables do not change.
VISUAL_EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType if t is not EventType.OFFLINE)

# Detectors the analyzer can run (analysis.detector in config.yaml); vision/detector.py builds them.
DETECTOR_NAMES: tuple[str, ...] = ("blocks", "mog2", "knn")
