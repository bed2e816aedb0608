"""Per-camera event detection with OpenCV on downscaled grayscale frames.

One CameraDetector per camera keeps a running-average background, per-block texture baselines and
noise estimates, all at ~160 px wide. Each frame is classified in a fixed order, so one happening
is reported as one type:

1. tamper: most textured blocks lost their fine texture (lens covered or heavily blurred);
   the background is frozen until the view returns.
2. scene_change: most structured blocks no longer correlate with the background (the camera moved);
   the model re-baselines once the view is steady again.
3. lighting_change: the brightness of most blocks jumped while their structure still correlates;
   the background re-baselines (like Frigate's recalibration) and no motion is reported.
4. intrusion: thresholded background difference, morphology and an area filter give boxes.

State is a deterministic function of the frames fed: no randomness, no clock. Any uint8 frame, BGR or
gray, 1 to 10000 px a side, is accepted: the work size is bounded (work_geometry) and no ratio divides by 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from image_pipeline.model import Box, EventType
from image_pipeline.vision.blocks import BlockStats, block_ncc, robust_noise
from image_pipeline.vision.detector import Detection

# Box and Detection stay importable from here, the path older callers use.
__all__ = ["Box", "CameraDetector", "Detection", "DetectorParams", "work_geometry"]

MIN_GAIN = 1.0 / 255.0  # one grey level in 255: the largest brightness drop a uint8 frame can show


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds of the detector; defaults suit 320x240 to 1280x720 JPEG frames."""

    work_width: int = 160  # analysis width in pixels; height follows the aspect ratio
    min_work_side: int = 8  # narrower or lower frames are stretched to this, so every grid block has pixels
    max_aspect: float = 4.0  # work height is at most this many work widths; taller frames are squeezed
    grid_x: int = 8  # blocks across for the global (tamper, scene, lighting) statistics
    warmup_frames: int = 3  # frames that only train the model
    bg_alpha: float = 0.05  # running-average rate of background pixels
    fg_alpha: float = 0.005  # slower rate under foreground, so a slow walker is not absorbed
    diff_sigmas: float = 5.0  # difference threshold in noise standard deviations ...
    diff_min: int = 14  # ... but never below this many grey levels (JPEG ringing, drift)
    min_area: float = 0.003  # smallest blob as a fraction of the frame
    max_fg_fraction: float = 0.35  # more foreground than this is a global change: recalibrate, no motion
    dead_ratio: float = 0.3  # a block is "dead" when its texture falls below this fraction of its baseline
    tamper_fraction: float = 0.6  # ... and the frame is tampered when this share of textured blocks is dead
    tamper_release: float = 0.3  # tamper ends once the dead share falls below this
    mismatch_ncc: float = 0.4  # a structured block "mismatches" below this correlation with the background
    scene_fraction: float = 0.5  # share of mismatching blocks that means the camera moved
    scene_min_texture: float = 0.45  # a "scene change" keeping less texture than this is a tampered lens
    settle_fraction: float = 0.002  # frame-to-frame changed-pixel share below which the view is steady
    settle_frames: int = 2  # steady frames needed before re-baselining after a knock
    settle_max: int = 12  # re-baseline anyway after this many frames
    light_gain: float = 1.2  # brightness ratio (either way) that is a lighting change
    texture_snr: float = 4.0  # a block counts as textured when its baseline exceeds this many noise units
    texture_update: float = 0.05  # baseline texture learning rate on normal frames


def work_geometry(size: tuple[int, int], p: DetectorParams) -> tuple[tuple[int, int], tuple[int, int]]:
    """Work (width, height) and block grid (columns, rows) for a full-resolution (width, height)."""
    w, h = size
    # Bounded both ways: a 1x10000 frame must not become a 10000-row work image with 80000 grid rows.
    sw = max(p.min_work_side, min(p.work_width, w))
    sh = min(max(p.min_work_side, round(h * sw / w)), round(p.max_aspect * sw))
    gy = min(max(3, int(p.grid_x * sh / sw + 0.5)), round(p.max_aspect * p.grid_x), sh)
    return (sw, sh), (min(p.grid_x, sw), gy)


class CameraDetector:
    """Stateful detector for one camera; feed frames in capture order."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params or DetectorParams()
        self._size: tuple[int, int] | None = None  # full-resolution (width, height)
        self._seen = 0
        self._mode = "normal"  # normal | tamper | settling
        self._settle_steady = 0
        self._settle_count = 0
        self._new_view_frames = 0  # frames in tamper showing texture again, but of another view
        self._cooldown = 0
        self._learned = 0
        self._blocks: BlockStats | None = None
        self._bg: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._base_tex: np.ndarray | None = None
        self._noise = (0.0, 0.0, 0.0)  # noise variance of gray_f32, fine_detail and band

    def difference_image(self) -> np.ndarray | None:
        """The last frame's difference from the background model at work size (render_key scales it up)."""
        return None if self._diff is None else self._diff.copy()

    @property
    def last_difference(self) -> np.ndarray | None:
        """Full-resolution uint8 difference between the last frame and the background model."""
        if self._diff is None or self._size is None:
            return None
        return cv2.resize(self._diff, self._size, interpolation=cv2.INTER_LINEAR)

    def _setup(self, size: tuple[int, int]) -> None:
        """Size the work buffers and the block grid for this frame size (the model restarts its warm-up)."""
        self._size = size
        self._blocks = BlockStats(*work_geometry(self._size, self.params))
        self._seen = 0
        self._mode = "normal"

    def process(self, frame: np.ndarray, full_size: tuple[int, int] | None = None) -> list[Detection]:
        """Analyse one uint8 frame, BGR (h, w, 3) or gray (h, w), and return the events it shows.

        full_size is the camera frame's (width, height) when `frame` is a reduced decode of it (at least
        work_width wide): the analysis is the same, and boxes come out in full-resolution pixels.
        """
        size = full_size or (frame.shape[1], frame.shape[0])
        if self._size != size or self._blocks is None:
            self._setup(size)
        b = self._blocks
        assert b is not None
        b.load(frame)
        self._seen += 1
        p = self.params
        if self._bg is None or self._bg.shape != b.gray_f32.shape or self._base_tex is None:
            self._rebaseline(b)
            self._diff = np.zeros_like(b.gray)
            return []
        estimate = robust_noise(b)
        noise_f, noise_hp, noise_band = self._noise if self._noise != (0.0, 0.0, 0.0) else estimate or self._noise
        tex = b.block_mean(b.fine_detail * b.fine_detail)
        textured = self._base_tex > max(p.texture_snr * noise_hp, 1.0)
        dead_share = self._dead_share(tex, textured, noise_hp)
        cv2.absdiff(b.gray, cv2.convertScaleAbs(self._bg), self._diff)
        if self._seen <= p.warmup_frames or self._cooldown > 0:
            # Learning only: at start, and just after adopting a new view (so residual wobble is absorbed).
            self._cooldown = max(0, self._cooldown - 1)
            self._update_noise_estimate(estimate)
            self._learn(b, tex, None)
            return []

        bg_band = b.band_of(self._bg)
        ncc, structured = block_ncc(b, b.band, bg_band, max(p.texture_snr * noise_band, 0.5))
        mismatch = float(np.mean(ncc[structured] < p.mismatch_ncc)) if structured.sum() >= 4 else 0.0
        # A knocked camera still sees as much texture as before; a covered or blurred lens does not. The
        # whole-frame ratio catches tampering of dim, noisy views where too few blocks count as textured.
        washed_out = mismatch >= p.scene_fraction and self._texture_ratio(tex, noise_hp) < p.scene_min_texture
        if self._mode == "tamper" or dead_share >= p.tamper_fraction or washed_out:
            return self._tamper(b, dead_share, mismatch, washed_out)
        if self._mode == "settling":
            return self._settling(b, noise_f)
        if mismatch >= p.scene_fraction:
            self._mode = "settling"
            self._settle_steady = self._settle_count = 0
            b.remember()
            return [Detection(EventType.SCENE_CHANGE, round(min(1.0, mismatch), 3))]
        gain = self._gain(b)  # finite and >= MIN_GAIN, so the inverse and the log below are safe
        if max(gain, 1.0 / gain) >= p.light_gain:
            self._rebaseline(b)
            return [Detection(EventType.LIGHTING_CHANGE, round(min(1.0, abs(math.log(gain)) / math.log(2.0)), 3))]
        self._update_noise_estimate(estimate)
        return self._intrusion(b, tex, noise_f)

    def _update_noise_estimate(self, est: tuple[float, float, float] | None) -> None:
        """Fold a frame's noise estimate in; only ordinary frames get here, never a global change."""
        if est is None:
            return
        if self._noise == (0.0, 0.0, 0.0):
            self._noise = est
            return
        # Rise slowly (a passing object inflates the estimate), fall faster.
        self._noise = tuple(  # type: ignore[assignment]
            old * 0.9 + new * 0.1 if new > old else old * 0.7 + new * 0.3
            for old, new in zip(self._noise, est, strict=True)
        )

    def _dead_share(self, tex: np.ndarray, textured: np.ndarray, noise_hp: float) -> float:
        """Share of textured blocks whose signal texture (noise removed) fell below dead_ratio of baseline."""
        assert self._base_tex is not None
        if textured.sum() < 4:
            return 0.0
        signal = np.maximum(tex - noise_hp, 0.0)
        base = np.maximum(self._base_tex - noise_hp, 1e-3)
        ratio = np.sqrt(signal / base)
        return float(np.mean(ratio[textured] < self.params.dead_ratio))

    def _gain(self, b: BlockStats) -> float:
        """Median brightness ratio of the frame to the background over blocks that are not near black.

        Never 0 or non-finite. A frame gone black after a normal view gives a ratio of 0. When the view had
        texture, the tamper test (first in the classification order) has already claimed such a frame as a
        covered lens; reaching here, the view had no texture to lose (e.g. a baseline of pure noise), so the
        blackout is what the next test in the order says: the largest possible lighting change.
        """
        assert self._bg is not None
        cur = b.block_mean(b.gray_f32)
        ref = b.block_mean(self._bg)
        ok = ref > 12.0
        if ok.sum() < 4:
            return 1.0
        gain = float(np.median(cur[ok] / ref[ok]))
        return max(gain, MIN_GAIN) if math.isfinite(gain) else 1.0

    def _texture_ratio(self, tex: np.ndarray, noise_hp: float) -> float:
        """Whole-frame fine texture (noise removed) relative to the baseline."""
        assert self._base_tex is not None
        signal = max(float(tex.sum()) - noise_hp * tex.size, 0.0)
        base = max(float(self._base_tex.sum()) - noise_hp * tex.size, 1e-3)
        return math.sqrt(signal / base)

    def _tamper(self, b: BlockStats, dead_share: float, mismatch: float, washed_out: bool) -> list[Detection]:
        # The background stays frozen so the restored view is recognised as the old one, not a new scene;
        # tampering ends only when the texture is back and the view matches that background again.
        p = self.params
        textured_again = self._mode == "tamper" and dead_share < p.tamper_release and not washed_out
        if textured_again and mismatch < p.scene_fraction:
            self._mode = "normal"
            return []
        # Texture is back but the view is another one: the camera was moved while covered. After a few
        # such frames (a hand leaving the lens passes through this), treat it as a knock and re-learn,
        # or the camera would stay "tampered" for good.
        self._new_view_frames = self._new_view_frames + 1 if textured_again else 0
        if self._new_view_frames > p.settle_frames:
            self._new_view_frames = 0
            self._mode = "settling"
            self._settle_steady = self._settle_count = 0
            b.remember()
            return [Detection(EventType.SCENE_CHANGE, round(min(1.0, mismatch), 3))]
        self._mode = "tamper"
        return [Detection(EventType.TAMPER, round(min(1.0, max(dead_share, 0.6 if washed_out else 0.0)), 3))]

    def _settling(self, b: BlockStats, noise_f: float) -> list[Detection]:
        """After a knock, wait until consecutive frames are pixel-identical up to noise, then adopt the view.

        A structure test would call a still-wobbling camera steady; a sub-pixel residual would then
        leave edge ghosts in the new background, so the test is the frame-to-frame difference itself.
        """
        p = self.params
        moving = cv2.countNonZero(b.foreground(cv2.convertScaleAbs(cv2.absdiff(b.gray_f32, b.prev_gray_f32)),
                                               self._threshold(noise_f))) / b.gray.size
        self._settle_count += 1
        self._settle_steady = self._settle_steady + 1 if moving < p.settle_fraction else 0
        b.remember()
        if self._settle_steady >= p.settle_frames or self._settle_count >= p.settle_max:
            self._rebaseline(b)
            self._mode = "normal"
            self._cooldown = p.warmup_frames
            return []
        return [Detection(EventType.SCENE_CHANGE, round(min(1.0, 0.5 + 10 * moving), 3))]

    def _threshold(self, noise_f: float) -> int:
        """Grey-level difference that noise alone almost never exceeds."""
        # The reference mixes a few noisy frames, so a difference carries ~1.2x the frame noise.
        return max(self.params.diff_min, int(self.params.diff_sigmas * 1.2 * math.sqrt(max(noise_f, 0.0)) + 0.5))

    def _rebaseline(self, b: BlockStats) -> None:
        """Adopt the current frame as the background and texture baseline."""
        self._bg = b.gray_f32.copy()
        self._learned = 0
        self._base_tex = b.block_mean(b.fine_detail * b.fine_detail).copy()
        b.remember()

    def _learn(self, b: BlockStats, tex: np.ndarray, fg: np.ndarray | None) -> None:
        """Blend the frame into the background (slowly under foreground) and the texture baseline."""
        assert self._bg is not None and self._base_tex is not None
        p = self.params
        # Average the first frames after a (re)baseline evenly, then settle into the running rate.
        self._learned += 1
        alpha = max(p.bg_alpha, 1.0 / (self._learned + 1))
        if fg is None:
            cv2.accumulateWeighted(b.gray_f32, self._bg, alpha)
        else:
            cv2.accumulateWeighted(b.gray_f32, self._bg, alpha, mask=cv2.bitwise_not(fg))
            cv2.accumulateWeighted(b.gray_f32, self._bg, p.fg_alpha, mask=fg)
        rate = max(p.texture_update, 1.0 / (self._learned + 1))
        self._base_tex += rate * (tex - self._base_tex)
        b.remember()

    def _intrusion(self, b: BlockStats, tex: np.ndarray, noise_f: float) -> list[Detection]:
        """Foreground blobs from the background difference, filtered by size, scaled to full resolution."""
        assert self._diff is not None and self._size is not None
        p = self.params
        fg = b.foreground(self._diff, self._threshold(noise_f))
        fg_share = cv2.countNonZero(fg) / fg.size
        if fg_share > p.max_fg_fraction:
            # Most of the frame changed at once without a recognised cause: recalibrate, report nothing.
            self._rebaseline(b)
            return []
        boxes, largest = b.blobs(fg, p.min_area, self._size)
        self._learn(b, tex, fg)
        if not boxes:
            return []
        score = min(1.0, 0.5 + 0.5 * largest / (0.02 * fg.size))
        return [Detection(EventType.INTRUSION, round(score, 3), tuple(boxes))]
