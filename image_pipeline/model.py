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


# In classification order; episodes are advanced in this order, which keeps outputs deterministic.
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

# Detectors the analyzer can run (analysis.detector in config.yaml); vision/detector.py builds them.
DETECTOR_NAMES: tuple[str, ...] = ("blocks", "mog2")
