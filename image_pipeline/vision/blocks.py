"""Low-level frame statistics for the detector: reused buffers, filters, block means and blobs."""

from __future__ import annotations

import cv2
import numpy as np

from image_pipeline.model import Box

FINE_SIGMA = 1.0  # fine high-pass cut: heavy lens blur removes everything above it
BAND_SIGMA = 3.0  # band-pass (FINE..BAND) for structure: coarse enough to shrug off noise, fine enough to move


class BlockStats:
    """One camera's analysis buffers at work size; load() fills them from a full-resolution frame."""

    def __init__(self, work: tuple[int, int], grid: tuple[int, int]) -> None:
        sw, sh = work
        self.work = work
        self.grid = grid
        self.small = np.zeros((sh, sw, 3), np.uint8)
        self.gray = np.zeros((sh, sw), np.uint8)
        self.gray_f32 = np.zeros((sh, sw), np.float32)  # input of every filter below
        self.blur_fine = np.zeros((sh, sw), np.float32)
        self.blur_coarse = np.zeros((sh, sw), np.float32)
        self.fine_detail = np.zeros((sh, sw), np.float32)  # gray minus blur_fine: what a covered lens loses
        self.band = np.zeros((sh, sw), np.float32)  # blur_fine minus blur_coarse: structure, above the noise
        self.prev_gray_f32 = np.zeros((sh, sw), np.float32)
        self.prev_fine_detail = np.zeros((sh, sw), np.float32)
        self.prev_band = np.zeros((sh, sw), np.float32)
        self.has_prev = False
        self._tmp = np.zeros((sh, sw), np.float32)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        # Tall closing kernel: joins a figure's head, torso and legs into one blob.
        self._close = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 7))

    def load(self, frame: np.ndarray) -> None:
        """Downscale (area average, which also suppresses noise and JPEG ringing), gray, and filter.

        The frame is BGR (h, w, 3) or already gray (h, w), uint8.
        """
        if frame.ndim == 2:
            cv2.resize(frame, self.work, dst=self.gray, interpolation=cv2.INTER_AREA)
        else:
            cv2.resize(frame, self.work, dst=self.small, interpolation=cv2.INTER_AREA)
            cv2.cvtColor(self.small, cv2.COLOR_BGR2GRAY, dst=self.gray)
        self.gray_f32[...] = self.gray
        cv2.GaussianBlur(self.gray_f32, (0, 0), FINE_SIGMA, dst=self.blur_fine)
        cv2.GaussianBlur(self.gray_f32, (0, 0), BAND_SIGMA, dst=self.blur_coarse)
        cv2.subtract(self.gray_f32, self.blur_fine, dst=self.fine_detail)
        cv2.subtract(self.blur_fine, self.blur_coarse, dst=self.band)

    def band_of(self, image: np.ndarray) -> np.ndarray:
        """Band-pass of another float32 image at work size (e.g. the background model)."""
        fine = cv2.GaussianBlur(image, (0, 0), FINE_SIGMA)
        return cv2.subtract(fine, cv2.GaussianBlur(image, (0, 0), BAND_SIGMA))

    def block_mean(self, image: np.ndarray) -> np.ndarray:
        """Mean of each grid block (area resize gives exact block averages)."""
        return cv2.resize(image, self.grid, interpolation=cv2.INTER_AREA)

    def remember(self) -> None:
        """Keep this frame's filtered images for the next frame's comparisons."""
        np.copyto(self.prev_gray_f32, self.gray_f32)
        np.copyto(self.prev_fine_detail, self.fine_detail)
        np.copyto(self.prev_band, self.band)
        self.has_prev = True

    def foreground(self, diff: np.ndarray, thr: int) -> np.ndarray:
        """Binary foreground mask: threshold, remove specks, join the parts of one object."""
        _, mask = cv2.threshold(diff, thr, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)

    def blobs(self, fg: np.ndarray, min_area: float, full: tuple[int, int]) -> tuple[list[Box], int]:
        """Boxes (full resolution) of blobs at least min_area of the frame, and the largest blob's area."""
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        min_px = max(6, int(min_area * fg.size))
        found = [tuple(int(v) for v in stats[i, :4]) for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_px]
        largest = max((int(stats[i, cv2.CC_STAT_AREA]) for i in range(1, n)), default=0)
        merged = merge_boxes(found, gap=2)  # type: ignore[arg-type]
        sx, sy = full[0] / self.work[0], full[1] / self.work[1]
        out = []
        for x, y, w, h in merged:
            fx, fy = int(x * sx), int(y * sy)
            fw = min(full[0] - fx, int((x + w) * sx + 0.999) - fx)
            fh = min(full[1] - fy, int((y + h) * sy + 0.999) - fy)
            out.append((fx, fy, fw, fh))
        return out, largest


def merge_boxes(boxes: list[Box], gap: int) -> list[Box]:
    """Merge boxes that overlap or lie within gap pixels of each other, until none do; sorted output."""
    merged = sorted(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, other in enumerate(out):
                if _near(box, other, gap):
                    x0, y0 = min(box[0], other[0]), min(box[1], other[1])
                    x1 = max(box[0] + box[2], other[0] + other[2])
                    y1 = max(box[1] + box[3], other[1] + other[3])
                    out[i] = (x0, y0, x1 - x0, y1 - y0)
                    changed = True
                    break
            else:
                out.append(box)
        merged = sorted(out)
    return merged


def _near(a: Box, b: Box, gap: int) -> bool:
    return not (a[0] > b[0] + b[2] + gap or b[0] > a[0] + a[2] + gap
                or a[1] > b[1] + b[3] + gap or b[1] > a[1] + a[3] + gap)


def block_ncc(b: BlockStats, x: np.ndarray, y: np.ndarray, min_energy: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-block normalised correlation of two zero-mean (band-passed) images, and which blocks have structure.

    A gain change scales a block's band-pass but keeps its correlation, which separates lighting from motion.
    """
    xy = b.block_mean(cv2.multiply(x, y))
    xx = b.block_mean(cv2.multiply(x, x))
    yy = b.block_mean(cv2.multiply(y, y))
    ncc = xy / np.sqrt(xx * yy + 1e-6)
    return ncc, yy > min_energy


def robust_noise(b: BlockStats) -> tuple[float, float, float] | None:
    """Noise variances (gray, fine high-pass, band-pass) from the frame-to-frame difference.

    Half the squared difference of two frames is the per-frame noise variance where nothing moved; the
    median over blocks ignores the few blocks where something did.
    """
    if not b.has_prev:
        return None
    out = []
    for cur, prev in ((b.gray_f32, b.prev_gray_f32), (b.fine_detail, b.prev_fine_detail), (b.band, b.prev_band)):
        d = cv2.subtract(cur, prev)
        out.append(float(np.median(b.block_mean(cv2.multiply(d, d)))) / 2.0)
    return out[0], out[1], out[2]
