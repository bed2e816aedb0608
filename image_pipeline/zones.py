"""Per-camera motion masks and named zones (config.yaml `areas:`), and the pure geometry that uses them.

A mask polygon is never analysed: the analyzer paints it out of every frame before detection, as
Frigate's motion masks do, so nothing moving there can raise an intrusion. A zone is a named polygon;
a subscription naming zones is alerted of an intrusion only when some box's foot point (bottom
centre, where a person stands) lies inside one of them. Points are full-resolution pixels.
Pure Python, so config.py can validate before anything starts; drawing lives in vision/masking.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from image_pipeline.model import Box

Polygon = tuple[tuple[int, ...], ...]  # ((x, y), ...), three points or more
_ZONE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_POINTS = 1000


@dataclass(frozen=True)
class ZoneConfig:
    """A named polygon of one camera."""

    name: str
    points: Polygon


@dataclass(frozen=True)
class CameraAreas:
    """One camera's motion mask (polygons never analysed) and zones."""

    camera: str
    mask: tuple[Polygon, ...] = ()
    zones: tuple[ZoneConfig, ...] = ()


def check_areas(areas: Sequence[CameraAreas]) -> None:
    """Raise ValueError naming the key of the first bad camera id, zone name or polygon."""
    seen: set[str] = set()
    for i, cam in enumerate(areas):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cam.camera) or cam.camera in seen:
            raise ValueError(f"areas[{i}].camera: {cam.camera!r} is not a camera id, or is listed twice")
        seen.add(cam.camera)
        for j, poly in enumerate(cam.mask):
            _check_polygon(poly, f"areas[{i}].mask[{j}]")
        names: set[str] = set()
        for j, zone in enumerate(cam.zones):
            if not _ZONE_NAME.fullmatch(zone.name) or zone.name in names:
                raise ValueError(f"areas[{i}].zones[{j}].name: {zone.name!r} is not a name"
                                 " (letters, digits, - and _) or is used twice")
            names.add(zone.name)
            _check_polygon(zone.points, f"areas[{i}].zones[{j}].points")


def _check_polygon(poly: Polygon, where: str) -> None:
    if not 3 <= len(poly) <= MAX_POINTS:
        raise ValueError(f"{where}: a polygon needs 3 to {MAX_POINTS} [x, y] points, got {len(poly)}")
    for point in poly:
        if len(point) != 2 or not all(0 <= v <= 100_000 for v in point):
            raise ValueError(f"{where}: each point must be [x, y] with 0 <= x, y <= 100000, got {list(point)}")


def zone_names(areas: Iterable[CameraAreas]) -> set[str]:
    """Every zone name of every camera."""
    return {zone.name for cam in areas for zone in cam.zones}


def areas_of(areas: Iterable[CameraAreas], camera_id: str) -> CameraAreas | None:
    """The camera's masks and zones, or None when it has none."""
    return next((cam for cam in areas if cam.camera == camera_id), None)


def foot_point(box: Box) -> tuple[float, float]:
    """Bottom centre of a box: where a person in it stands."""
    return box[0] + box[2] / 2.0, float(box[1] + box[3])


def inside(point: tuple[float, float], poly: Polygon) -> bool:
    """Whether the point lies inside the polygon (even-odd rule; a point on an edge may go either way)."""
    x, y = point
    hit = False
    for (x0, y0), (x1, y1) in zip(poly, (*poly[1:], poly[0]), strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            hit = not hit
    return hit


def zones_hit(areas: Iterable[CameraAreas], camera_id: str, boxes: Iterable[Box]) -> frozenset[str]:
    """Names of the camera's zones holding the foot point of at least one of the boxes."""
    cam = areas_of(areas, camera_id)
    if cam is None or not cam.zones:
        return frozenset()
    feet = [foot_point(b) for b in boxes]
    return frozenset(z.name for z in cam.zones if any(inside(f, z.points) for f in feet))
