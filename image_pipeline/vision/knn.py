"""The second classical baseline: OpenCV's KNN background subtractor, post-processed exactly as MOG2."""

from __future__ import annotations

import cv2

from image_pipeline.vision.mog2 import Mog2Detector


class KnnDetector(Mog2Detector):
    """cv2.createBackgroundSubtractorKNN at its defaults; shadows, morphology and contours as Mog2Detector."""

    def _make_subtractor(self) -> cv2.BackgroundSubtractor:
        """The KNN subtractor at its defaults, shadows marked (value 127, like MOG2's)."""
        return cv2.createBackgroundSubtractorKNN(detectShadows=True)
