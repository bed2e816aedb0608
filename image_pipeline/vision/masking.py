"""Motion masks painted out of frames before detection, and masks and zones drawn on event images."""

from __future__ import annotations

import cv2
import numpy as np

from image_pipeline.zones import CameraAreas, Polygon

MASK_COLOUR = (80, 80, 80)  # BGR: masked areas, hatched grey on the annotated image
ZONE_COLOUR = (0, 200, 255)  # BGR: zone outlines and names, amber


class MotionMask:
    """One camera's mask polygons, rasterised once per frame shape; paint() blanks them out of a frame.

    A constant fill never differs from the background, so nothing there moves for any detector, and
    the blocks detector's texture baselines simply see a flat, untextured area.
    """

    def __init__(self, polygons: tuple[Polygon, ...]) -> None:
        self.polygons = polygons
        self._key: tuple[tuple[int, ...], tuple[int, int]] | None = None
        self._raster: np.ndarray | None = None

    def paint(self, frame: np.ndarray, full_size: tuple[int, int] | None = None) -> np.ndarray:
        """The frame with the mask filled black (a copy; the frame itself is left as it is)."""
        if not self.polygons:
            return frame
        raster = self._raster_for(frame.shape[:2], full_size or (frame.shape[1], frame.shape[0]))
        out = frame.copy()
        out[raster > 0] = 0
        return out

    def _raster_for(self, shape: tuple[int, ...], full: tuple[int, int]) -> np.ndarray:
        key = (tuple(shape), full)
        if self._key != key or self._raster is None:
            h, w = shape[0], shape[1]
            self._raster = np.zeros((h, w), np.uint8)
            cv2.fillPoly(self._raster, _scaled(self.polygons, w / full[0], h / full[1]), 255)
            self._key = key
        return self._raster


def _scaled(polygons: tuple[Polygon, ...], sx: float, sy: float) -> list[np.ndarray]:
    return [np.array([[round(x * sx), round(y * sy)] for x, y in poly], np.int32) for poly in polygons]


def draw_areas(image: np.ndarray, areas: CameraAreas | None) -> np.ndarray:
    """A copy of a full-resolution BGR frame with the camera's mask shaded and zones outlined and named."""
    if areas is None or not (areas.mask or areas.zones):
        return image
    out = image.copy()
    if areas.mask:
        shade = out.copy()
        cv2.fillPoly(shade, _scaled(areas.mask, 1.0, 1.0), MASK_COLOUR)
        cv2.addWeighted(shade, 0.6, out, 0.4, 0.0, dst=out)
    for zone in areas.zones:
        pts = _scaled((zone.points,), 1.0, 1.0)
        cv2.polylines(out, pts, True, ZONE_COLOUR, 2)
        x, y = int(pts[0][:, 0].min()), int(pts[0][:, 1].min())
        cv2.putText(out, zone.name, (x + 4, max(y + 16, 40)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZONE_COLOUR, 1,
                    cv2.LINE_AA)
    return out
