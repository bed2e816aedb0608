"""Deterministic procedural camera backgrounds (corridor, parking lot, yard, warehouse, office).

We cannot ship downloaded photos, so these scenes are drawn with OpenCV: perspective geometry,
gradients, value-noise texture, a soft lens blur and grain. Texture matters because the blur-tamper
and scene-change detectors rely on edges. `python -m image_pipeline.sim.backgrounds [--out DIR]`
rewrites the files in image_original/.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from image_pipeline.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

Size = tuple[int, int]  # width, height
Colour = tuple[int, int, int]  # BGR


def _value_noise(rng: np.random.Generator, size: Size, cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: random values on a coarse grid, resized with cubic interpolation."""
    w, h = size
    coarse = rng.uniform(-1.0, 1.0, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _texture(rng: np.random.Generator, size: Size, amp: float) -> np.ndarray:
    """Multi-octave noise field (float32, roughly +-amp) to give flat paint a real surface."""
    field = np.zeros((size[1], size[0]), np.float32)
    for cell, weight in ((64, 0.5), (16, 0.3), (4, 0.2)):
        field += weight * _value_noise(rng, size, cell)
    field += 0.15 * rng.standard_normal((size[1], size[0]), dtype=np.float32)
    return field * amp


def _fill(img: np.ndarray, pts: list[tuple[float, float]], colour: tuple[int, ...]) -> None:
    cv2.fillPoly(img, [np.array(pts, np.int32)], colour, lineType=cv2.LINE_AA)


def _vgrad(size: Size, top: Colour, bottom: Colour) -> np.ndarray:
    """Vertical colour gradient, float32 BGR."""
    w, h = size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    a = np.array(top, np.float32)[None, None, :]
    b = np.array(bottom, np.float32)[None, None, :]
    return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).copy()


def _finish(rng: np.random.Generator, img: np.ndarray, grain: float = 5.0) -> np.ndarray:
    """Surface texture, vignette, a slight lens blur and grain, so the scene reads like a camera image."""
    h, w = img.shape[:2]
    out: np.ndarray = img.astype(np.float32)
    out += _texture(rng, (w, h), 10.0)[:, :, None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    out *= (1.0 - 0.18 * r2)[:, :, None]
    out = cv2.GaussianBlur(out, (0, 0), 0.7)
    out += rng.normal(0.0, grain, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _lerp(p: tuple[float, float], q: tuple[float, float], t: float) -> tuple[float, float]:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def corridor(rng: np.random.Generator, size: Size) -> np.ndarray:
    """An indoor corridor in one-point perspective with tiles, doors and ceiling lights."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    vx, vy = w * rng.uniform(0.42, 0.58), h * rng.uniform(0.38, 0.46)
    bw, bh = w * 0.16, h * 0.2  # back wall half extents
    bl, br, bt, bb = vx - bw, vx + bw, vy - bh, vy + bh
    _fill(img, [(0, 0), (w, 0), (br, bt), (bl, bt)], (200, 205, 210))  # ceiling
    _fill(img, [(0, 0), (bl, bt), (bl, bb), (0, h)], (150, 170, 185))  # left wall
    _fill(img, [(w, 0), (br, bt), (br, bb), (w, h)], (140, 160, 178))  # right wall
    _fill(img, [(0, h), (bl, bb), (br, bb), (w, h)], (95, 105, 120))  # floor
    _fill(img, [(bl, bt), (br, bt), (br, bb), (bl, bb)], (120, 135, 150))  # far wall
    for i in range(1, 14):  # floor tile lines converging on the vanishing point
        x = w * i / 14
        cv2.line(img, (int(x), h), (int(bl + (br - bl) * i / 14), int(bb)), (70, 78, 90), 1, cv2.LINE_AA)
    for k in range(1, 12):
        t = 1 - 0.78**k
        y = int(h + (bb - h) * t)
        cv2.line(img, (int(_lerp((0, h), (bl, bb), t)[0]), y), (int(_lerp((w, h), (br, bb), t)[0]), y),
                 (70, 78, 90), 1, cv2.LINE_AA)
    for side in (0, 1):  # doors on both walls
        for t0 in rng.uniform(0.1, 0.75, 2):
            t1 = t0 + 0.12
            x_edge = 0.0 if side == 0 else float(w)
            x_back = bl if side == 0 else br
            top0 = _lerp((x_edge, h * 0.1), (x_back, bt + (bb - bt) * 0.25), t0)
            top1 = _lerp((x_edge, h * 0.1), (x_back, bt + (bb - bt) * 0.25), t1)
            bot0 = _lerp((x_edge, h), (x_back, bb), t0)
            bot1 = _lerp((x_edge, h), (x_back, bb), t1)
            colour = tuple(int(c) for c in rng.integers(40, 140, 3))
            _fill(img, [top0, top1, bot1, bot0], colour)
            cv2.polylines(img, [np.array([top0, top1, bot1, bot0], np.int32)], True, (30, 30, 30), 2)
            handle = _lerp(_lerp(top1, bot1, 0.55), _lerp(top0, bot0, 0.55), 0.15)
            cv2.circle(img, (int(handle[0]), int(handle[1])), 3, (190, 200, 210), -1)
    for k in range(1, 6):  # ceiling lights
        t = 1 - 0.7**k
        cx = int(vx)
        cy = int(bt * t)
        half = int(w * 0.08 * (1 - t) + 4)
        cv2.rectangle(img, (cx - half, cy - 2), (cx + half, cy + 3 + int(6 * (1 - t))), (245, 250, 255), -1)
    return _finish(rng, img)


def parking_lot(rng: np.random.Generator, size: Size) -> np.ndarray:
    """An outdoor parking lot: building facade, asphalt with bay lines, parked cars."""
    w, h = size
    horizon = int(h * rng.uniform(0.32, 0.4))
    img = _vgrad(size, (230, 200, 170), (200, 190, 180))
    img[horizon:] = _vgrad((w, h - horizon), (95, 95, 100), (70, 72, 75))
    img = img.astype(np.uint8)
    bx = 0
    while bx < w:  # building blocks with window grids
        bwid = int(rng.integers(w // 6, w // 3))
        top = int(horizon - rng.integers(h // 8, h // 4))
        base = tuple(int(c) for c in rng.integers(90, 170, 3))
        cv2.rectangle(img, (bx, top), (bx + bwid, horizon), base, -1)
        for yy in range(top + 8, horizon - 10, 16):
            for xx in range(bx + 6, bx + bwid - 10, 14):
                lit = rng.random() < 0.3
                cv2.rectangle(img, (xx, yy), (xx + 8, yy + 10), (150, 220, 240) if lit else (60, 50, 45), -1)
        bx += bwid + int(rng.integers(0, 20))
    vx = w * rng.uniform(0.3, 0.7)
    for i in range(-8, 9):  # bay lines in perspective
        x_near = vx + i * w * 0.16
        x_far = vx + i * w * 0.03
        cv2.line(img, (int(x_near), h), (int(x_far), horizon + 6), (225, 225, 225), 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(4, 7))):  # parked cars as bodies, windows and wheels
        depth = rng.uniform(0.15, 0.9)
        cy = int(horizon + (h - horizon) * depth)
        cw = int(w * (0.08 + 0.17 * depth))
        ch = int(cw * 0.45)
        cx = int(rng.uniform(0, w - cw))
        body = tuple(int(c) for c in rng.integers(20, 230, 3))
        cv2.rectangle(img, (cx, cy - ch // 2), (cx + cw, cy), body, -1)
        _fill(img, [(cx + cw * 0.2, cy - ch // 2), (cx + cw * 0.3, cy - ch), (cx + cw * 0.7, cy - ch),
                    (cx + cw * 0.8, cy - ch // 2)], body)
        _fill(img, [(cx + cw * 0.27, cy - ch // 2 - 2), (cx + cw * 0.34, cy - ch + 4), (cx + cw * 0.66, cy - ch + 4),
                    (cx + cw * 0.73, cy - ch // 2 - 2)], (70, 60, 55))
        for wx in (cx + cw // 5, cx + 4 * cw // 5):
            cv2.circle(img, (wx, cy), max(3, ch // 4), (20, 20, 20), -1, cv2.LINE_AA)
        cv2.rectangle(img, (cx + 2, cy - ch // 2 + 3), (cx + 8, cy - ch // 2 + 7), (200, 230, 250), -1)
    return _finish(rng, img)


def yard(rng: np.random.Generator, size: Size) -> np.ndarray:
    """An outdoor yard: sky, trees, a wooden fence, grass and a gravel path."""
    w, h = size
    horizon = int(h * rng.uniform(0.35, 0.45))
    img = _vgrad(size, (235, 190, 150), (225, 215, 200))
    grass = _vgrad((w, h - horizon), (70, 130, 90), (45, 110, 70))
    grass += _texture(rng, (w, h - horizon), 25.0)[:, :, None]
    img[horizon:] = grass
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 8))):  # trees behind the fence
        tx = int(rng.uniform(0, w))
        th = int(h * rng.uniform(0.2, 0.35))
        cv2.rectangle(img, (tx - 4, horizon - th // 2), (tx + 4, horizon), (40, 60, 80), -1)
        for _ in range(14):
            ox, oy = rng.normal(0, th * 0.18, 2)
            r = int(th * rng.uniform(0.12, 0.22))
            g = tuple(int(c) for c in (rng.integers(20, 60), rng.integers(80, 150), rng.integers(30, 70)))
            cv2.circle(img, (int(tx + ox), int(horizon - th * 0.6 + oy)), r, g, -1, cv2.LINE_AA)
    fence_top, fence_bot = int(horizon - h * 0.08), int(horizon + h * 0.06)
    cv2.rectangle(img, (0, fence_top + 6), (w, fence_top + 12), (60, 95, 130), -1)
    cv2.rectangle(img, (0, fence_bot - 16), (w, fence_bot - 10), (60, 95, 130), -1)
    for x in range(0, w, max(6, w // 60)):  # pickets
        shade = int(rng.integers(-15, 15))
        cv2.rectangle(img, (x, fence_top), (x + max(3, w // 110), fence_bot),
                      (80 + shade, 120 + shade, 160 + shade), -1)
    px = w * rng.uniform(0.3, 0.7)
    _fill(img, [(px - w * 0.02, fence_bot), (px + w * 0.02, fence_bot), (px + w * 0.25, h), (px - w * 0.2, h)],
          (150, 165, 175))
    for _ in range(400):  # gravel and stones on the path and grass tufts elsewhere
        x, y = int(rng.uniform(0, w)), int(rng.uniform(fence_bot, h))
        c = int(rng.integers(60, 200))
        cv2.circle(img, (x, y), int(rng.integers(1, 3)), (c, c, c), -1)
    return _finish(rng, img)


def warehouse(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A warehouse aisle: steel shelving with boxes on both sides and a concrete floor."""
    w, h = size
    img = _vgrad(size, (90, 95, 100), (140, 140, 135)).astype(np.uint8)
    vx, vy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.35, 0.45)
    _fill(img, [(w * 0.28, h), (vx - 10, vy + 10), (vx + 10, vy + 10), (w * 0.72, h)], (120, 125, 128))
    for side in (-1, 1):
        x_edge = 0.0 if side < 0 else float(w)
        x_in = vx + side * 14
        for level in range(6):  # shelf beams converging on the vanishing point
            y_edge = h * (0.05 + level * 0.17)
            y_in = vy - 40 + level * 12
            cv2.line(img, (int(x_edge), int(y_edge)), (int(x_in), int(y_in)), (30, 90, 200), 3, cv2.LINE_AA)
            for t in np.linspace(0.0, 0.9, 9):  # boxes sitting on the beam
                p = _lerp((x_edge, y_edge), (x_in, y_in), float(t))
                q = _lerp((x_edge, y_edge), (x_in, y_in), float(t) + 0.09)
                bh = (1 - t) * h * 0.12 + 3
                colour = tuple(int(c) for c in rng.integers(50, 200, 3) * np.array([0.6, 0.8, 1.0]))
                _fill(img, [p, q, (q[0], q[1] - bh), (p[0], p[1] - bh)], colour)
                cv2.line(img, (int(p[0]), int(p[1] - bh)), (int(p[0]), int(p[1])), (30, 30, 30), 1)
        for t in np.linspace(0.0, 0.8, 5):  # uprights
            top = _lerp((x_edge, 0), (x_in, vy - 50), float(t))
            bot = _lerp((x_edge, h), (x_in, vy + 10), float(t))
            cv2.line(img, (int(top[0]), int(top[1])), (int(bot[0]), int(bot[1])), (40, 70, 150), 4, cv2.LINE_AA)
    for k in range(1, 8):  # floor joints
        y = int(h - (h - vy) * (1 - 0.75**k))
        cv2.line(img, (0, y), (w, y), (95, 100, 104), 1)
    return _finish(rng, img)


def office(rng: np.random.Generator, size: Size) -> np.ndarray:
    """An office room: windows with blinds, desks with monitors, a carpet and plants."""
    w, h = size
    wall_bottom = int(h * rng.uniform(0.5, 0.6))
    img = _vgrad(size, (200, 215, 225), (175, 190, 200))
    carpet = _vgrad((w, h - wall_bottom), (110, 90, 80), (90, 70, 60))
    carpet += _texture(rng, (w, h - wall_bottom), 18.0)[:, :, None]
    img[wall_bottom:] = carpet
    img = np.clip(img, 0, 255).astype(np.uint8)
    for i in range(int(rng.integers(2, 4))):  # windows with blinds
        x0 = int(w * (0.06 + 0.32 * i)) + int(rng.integers(0, 20))
        x1, y0, y1 = x0 + int(w * 0.22), int(h * 0.08), int(wall_bottom - h * 0.12)
        cv2.rectangle(img, (x0, y0), (x1, y1), (245, 230, 210), -1)
        for y in range(y0, y1, 6):
            cv2.line(img, (x0, y), (x1, y), (200, 200, 195), 2)
        cv2.rectangle(img, (x0, y0), (x1, y1), (90, 90, 90), 3)
    for _ in range(int(rng.integers(2, 4))):  # desks with monitors
        dx = int(rng.uniform(0, w * 0.75))
        dy = int(wall_bottom + rng.uniform(0.1, 0.5) * (h - wall_bottom))
        dw = int(w * rng.uniform(0.2, 0.3))
        cv2.rectangle(img, (dx, dy - 10), (dx + dw, dy), (60, 100, 140), -1)
        cv2.rectangle(img, (dx + 5, dy), (dx + 12, dy + int(h * 0.12)), (50, 50, 50), -1)
        cv2.rectangle(img, (dx + dw - 12, dy), (dx + dw - 5, dy + int(h * 0.12)), (50, 50, 50), -1)
        mx = dx + dw // 3
        cv2.rectangle(img, (mx, dy - 10 - int(h * 0.09)), (mx + int(dw * 0.35), dy - 14), (25, 25, 25), -1)
        cv2.rectangle(img, (mx + 3, dy - 7 - int(h * 0.09)), (mx + int(dw * 0.35) - 3, dy - 17), (120, 80, 40), -1)
    for _ in range(2):  # potted plants
        px = int(rng.uniform(0.05, 0.95) * w)
        py = int(wall_bottom + h * 0.05)
        cv2.rectangle(img, (px - 10, py - 20), (px + 10, py + 5), (40, 60, 120), -1)
        for _ in range(25):
            ang = rng.uniform(-2.6, -0.5)
            ln = rng.uniform(15, 45)
            end = (int(px + ln * np.cos(ang)), int(py - 20 + ln * np.sin(ang)))
            cv2.line(img, (px, py - 20), end, (40, int(rng.integers(100, 170)), 50), 3, cv2.LINE_AA)
    return _finish(rng, img)


SCENES: dict[str, Callable[[np.random.Generator, Size], np.ndarray]] = {
    "corridor": corridor,
    "parking_lot": parking_lot,
    "yard": yard,
    "warehouse": warehouse,
    "office": office,
}


def render_all(size: Size = (640, 480), seed: int = 2024) -> dict[str, np.ndarray]:
    """Every scene, each from its own fixed seed so adding a scene never changes the others."""
    return {name: fn(np.random.default_rng([seed, i]), size) for i, (name, fn) in enumerate(SCENES.items())}


def write_all(out: Path, size: Size = (640, 480), quality: int = 88) -> list[Path]:
    """Render every scene into `out` as JPEG files; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in render_all(size).items():
        path = out / f"{name}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {name}")
        path.write_bytes(buf.tobytes())
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Regenerate the background images."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "image_original")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    for path in write_all(args.out):
        logger.info("wrote path=%s bytes=%d", path, path.stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
