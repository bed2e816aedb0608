"""The classical background-subtraction detectors: OpenCV's MOG2 (and, in knn.py, KNN) with stock settings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from image_pipeline.model import Box, EventType
from image_pipeline.vision.detector import Detection

SHADOW = 127  # the mask value MOG2 gives shadow pixels when detectShadows is on
MIN_AREA = 0.001  # smallest contour as a fraction of the frame
# Larger frames are analysed downscaled: a per-pixel mixture model of a 10000x10000 frame would need
# about 10 GB. Every size the pipeline normally sees (up to 1920x1080) runs at full resolution.
MAX_WORK_PIXELS = 1920 * 1080


class Mog2Detector:
    """MOG2 background subtraction, the baseline the real-footage scoring compares the blocks detector against.

    Default cv2.createBackgroundSubtractorMOG2 parameters with shadow detection; shadow pixels are
    dropped, the mask is opened (3x3) and dilated twice, and every external contour covering at least
    0.1% of the frame becomes an intrusion box at full resolution. It reports nothing but intrusions,
    so a lighting change or a moved camera shows up as large boxes, which is the point of a baseline.
    State is a deterministic function of the frames fed: no randomness, no clock.
    """

    def __init__(self) -> None:
        self._shape: tuple[int, ...] | None = None  # full-resolution frame shape, channels included
        self._work = (0, 0)  # analysis (width, height)
        self._subtractor: cv2.BackgroundSubtractor | None = None
        self._mask: np.ndarray | None = None  # last foreground mask at work size
        self._kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))

    def difference_image(self) -> np.ndarray | None:
        """The last foreground mask at work size."""
        return None if self._mask is None else self._mask.copy()

    @property
    def last_difference(self) -> np.ndarray | None:
        """The last foreground mask (0 or 255) at full resolution."""
        if self._mask is None or self._shape is None:
            return None
        full = (self._shape[1], self._shape[0])
        if self._work == full:
            return self._mask.copy()
        return cv2.resize(self._mask, full, interpolation=cv2.INTER_NEAREST)

    def process(self, frame: np.ndarray, full_size: tuple[int, int] | None = None) -> list[Detection]:
        """Analyse one BGR (or gray) uint8 frame and return its intrusion, if any (boxes in full_size pixels)."""
        if frame.shape != self._shape or self._subtractor is None:
            self._reset(frame)
        assert self._subtractor is not None
        work = frame if self._work == (frame.shape[1], frame.shape[0]) else cv2.resize(
            frame, self._work, interpolation=cv2.INTER_AREA)
        raw = self._subtractor.apply(work)
        _, mask = cv2.threshold(raw, SHADOW, 255, cv2.THRESH_BINARY)  # shadows (127) count as background
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        self._mask = cv2.dilate(mask, self._kernel, iterations=2)
        width, height = full_size or (frame.shape[1], frame.shape[0])
        return self._intrusion(width, height)

    def _reset(self, frame: np.ndarray) -> None:
        """Start a fresh model for a new frame shape; the old one describes another view."""
        h, w = frame.shape[:2]
        scale = min(1.0, math.sqrt(MAX_WORK_PIXELS / (w * h)))
        self._work = (max(1, round(w * scale)), max(1, round(h * scale)))
        self._shape = frame.shape
        self._subtractor = self._make_subtractor()
        self._mask = None

    def _make_subtractor(self) -> cv2.BackgroundSubtractor:
        """The OpenCV subtractor at its defaults, shadows marked (so they can be dropped)."""
        return cv2.createBackgroundSubtractorMOG2(detectShadows=True)

    def _intrusion(self, width: int, height: int) -> list[Detection]:
        """Boxes of the large enough external contours of the mask, scaled to full resolution."""
        assert self._mask is not None
        contours, _ = cv2.findContours(self._mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        area = self._mask.size
        big = [c for c in contours if cv2.contourArea(c) >= MIN_AREA * area]
        if not big:
            return []
        boxes = sorted(self._to_full(cv2.boundingRect(c), width, height) for c in big)
        largest = max(cv2.contourArea(c) for c in big)
        # Same scale as the blocks detector: 0.5 for the smallest blob, 1.0 from 2% of the frame up.
        score = min(1.0, 0.5 + 0.5 * largest / (0.02 * area))
        return [Detection(EventType.INTRUSION, round(score, 3), tuple(boxes))]

    def _to_full(self, rect: Sequence[int], width: int, height: int) -> Box:
        """A work-size rectangle as a full-resolution box, clipped to the frame."""
        sx, sy = width / self._work[0], height / self._work[1]
        x, y, w, h = rect
        fx, fy = min(width - 1, int(x * sx)), min(height - 1, int(y * sy))
        fw = max(1, min(width - fx, math.ceil((x + w) * sx) - fx))
        fh = max(1, min(height - fy, math.ceil((y + h) * sy) - fy))
        return fx, fy, fw, fh
