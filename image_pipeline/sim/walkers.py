"""Person-like figures for intrusion scenes: a walking silhouette with clothing, shading and texture."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from image_pipeline.model import Box

Colour = tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class Walker:
    """One figure's path across the view, in fractions of the frame so it scales with any size."""

    direction: int  # +1 enters on the left, -1 enters on the right
    delay: int  # frames after the happening starts before this figure sets off
    frames: int  # frames from fully outside on one edge to fully outside on the other
    feet_from: float  # feet height (fraction of frame height) at entry
    feet_to: float  # ... and at exit; the figure grows as it comes closer (perspective)
    scale: float  # figure height per unit of feet position
    shirt: Colour
    trousers: Colour
    skin: Colour
    gait: float  # stride phase advance per frame (radians)


def luminance(colour: Colour) -> float:
    """Perceived brightness of a BGR colour."""
    return 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]


def contrasting(colour: Colour, background: float, min_diff: float) -> Colour:
    """The colour, darkened or brightened until its brightness differs from the background's by min_diff.

    Real intruders can blend in; we keep a floor so the ground truth is visible at all.
    """
    lum = luminance(colour)
    if abs(lum - background) >= min_diff:
        return colour
    target = background - min_diff if background > 128 else background + min_diff
    target = float(np.clip(target, 5, 250))
    shift = target - lum
    return tuple(int(np.clip(c + shift, 0, 255)) for c in colour)  # type: ignore[return-value]


def walker_geometry(walker: Walker, k: int, size: tuple[int, int]) -> tuple[float, float, float] | None:
    """(centre x, feet y, height) in pixels at happening frame k, or None before/after the walk."""
    t = k - walker.delay
    if t < 0 or t >= walker.frames:
        return None
    w, h = size
    u = t / max(1, walker.frames - 1)
    feet = h * (walker.feet_from + (walker.feet_to - walker.feet_from) * u)
    height = feet * walker.scale
    half = 0.22 * height + 4
    x0, x1 = -half, w + half
    if walker.direction < 0:
        x0, x1 = x1, x0
    return x0 + (x1 - x0) * u, feet, height


def _limb(canvas: np.ndarray, mask: np.ndarray, start: tuple[float, float], angle: float, length: float,
          thick: float, colour: Colour) -> tuple[float, float]:
    end = (start[0] + length * math.sin(angle), start[1] + length * math.cos(angle))
    p, q = (int(start[0]), int(start[1])), (int(end[0]), int(end[1]))
    t = max(2, int(thick))
    cv2.line(canvas, p, q, colour, t, cv2.LINE_AA)
    cv2.line(mask, p, q, 255, t, cv2.LINE_AA)
    return end


def draw_walker(frame: np.ndarray, walker: Walker, k: int, rng: np.random.Generator) -> Box | None:
    """Draw the figure into frame (in place) at happening frame k; returns its visible bbox or None."""
    fh, fw = frame.shape[:2]
    geo = walker_geometry(walker, k, (fw, fh))
    if geo is None:
        return None
    cx, feet, height = geo
    pad = int(0.3 * height) + 4
    bx, by = int(cx) - pad, int(feet - height) - 4
    bw, bh = 2 * pad, int(height) + 8
    canvas = np.zeros((bh, bw, 3), np.uint8)
    mask = np.zeros((bh, bw), np.uint8)
    c = cx - bx  # local centre
    top = 4.0
    phase = walker.gait * (k - walker.delay)
    swing = 0.45 * math.sin(phase)
    u = height
    # Legs behind the torso, swinging in opposite phase; shoes at the feet.
    for side, sgn in ((-1, 1), (1, -1)):
        hip = (c + side * 0.05 * u, top + 0.5 * u)
        end = _limb(canvas, mask, hip, sgn * swing, 0.47 * u, 0.08 * u, walker.trousers)
        cv2.ellipse(canvas, (int(end[0]), int(end[1])), (max(2, int(0.05 * u)), max(1, int(0.02 * u))), 0, 0, 360,
                    (25, 25, 30), -1)
        cv2.ellipse(mask, (int(end[0]), int(end[1])), (max(2, int(0.05 * u)), max(1, int(0.02 * u))), 0, 0, 360,
                    255, -1)
    torso = np.array([(c - 0.12 * u, top + 0.15 * u), (c + 0.12 * u, top + 0.15 * u),
                      (c + 0.1 * u, top + 0.53 * u), (c - 0.1 * u, top + 0.53 * u)], np.int32)
    cv2.fillPoly(canvas, [torso], walker.shirt, cv2.LINE_AA)
    cv2.fillPoly(mask, [torso], 255, cv2.LINE_AA)
    for side, sgn in ((-1, -1), (1, 1)):
        shoulder = (c + side * 0.12 * u, top + 0.17 * u)
        end = _limb(canvas, mask, shoulder, sgn * swing * 0.8, 0.3 * u, 0.055 * u, walker.shirt)
        cv2.circle(canvas, (int(end[0]), int(end[1])), max(1, int(0.025 * u)), walker.skin, -1)
    neck = (int(c), int(top + 0.14 * u))
    cv2.line(canvas, neck, (int(c), int(top + 0.1 * u)), walker.skin, max(2, int(0.04 * u)))
    cv2.line(mask, neck, (int(c), int(top + 0.1 * u)), 255, max(2, int(0.04 * u)))
    head = (int(c), int(top + 0.065 * u))
    axes = (max(2, int(0.05 * u)), max(3, int(0.065 * u)))
    cv2.ellipse(canvas, head, axes, 0, 0, 360, walker.skin, -1, cv2.LINE_AA)
    cv2.ellipse(canvas, (head[0], head[1] - axes[1] // 2), (axes[0], axes[1] // 2), 0, 180, 360, (30, 35, 45), -1)
    cv2.ellipse(mask, head, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    # Shading across the body and fabric grain, so the figure is not a flat cut-out.
    shade = np.linspace(0.8, 1.1, bw, dtype=np.float32)[None, :, None]
    grain = rng.normal(1.0, 0.06, (bh, bw, 1)).astype(np.float32)
    body = canvas.astype(np.float32) * shade * grain
    alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[:, :, None] / 255.0
    # Clip the local canvas to the frame; the truth box is what remains visible.
    x0, y0 = max(0, bx), max(0, by)
    x1, y1 = min(fw, bx + bw), min(fh, by + bh)
    if x1 <= x0 or y1 <= y0:
        return None
    lx0, ly0 = x0 - bx, y0 - by
    sub_a = alpha[ly0:ly0 + y1 - y0, lx0:lx0 + x1 - x0]
    if float(sub_a.max()) < 0.5:
        return None
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    sub_b = body[ly0:ly0 + y1 - y0, lx0:lx0 + x1 - x0]
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - sub_a) + sub_b * sub_a, 0, 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect((sub_a[:, :, 0] >= 0.5).astype(np.uint8))
    return (x0 + x, y0 + y, w, h)
