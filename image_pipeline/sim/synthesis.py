"""Synthetic camera scenes with scripted happenings and their ground truth.

Each camera films one background photo through a virtual lens: sensor noise, a slow illumination
drift, and a script of happenings (intrusions, lighting switches, lens tampering, knocks) drawn
from a seeded generator. Everything is a deterministic function of (camera_id, frames, seed, size,
backgrounds, noise).

Scripts: with frames >= 100 every camera gets at least one happening of each type, in a seeded
order, separated by quiet gaps of 10+ frames (after a lead-in of 10+ frames so a detector can
learn the view). Longer runs get extra happenings. Shorter runs keep the happenings that fit, in
the drawn order, and drop the rest; below ~30 frames a script may be empty.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from image_pipeline.model import VISUAL_EVENT_TYPES
from image_pipeline.sim.walkers import Walker, contrasting, draw_walker, walker_geometry

BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png")
WORLD_MARGIN = 1.4  # the background is a wider "world" so a knocked camera sees new content, not borders
LEAD_IN = (10, 15)
GAP = (10, 17)
TAIL = 8
# Truth span bounds (frames) per type; intrusion spans the walk, scene_change the knock plus settling.
LENGTHS = {"intrusion": (16, 40), "tamper": (8, 20), "scene_change": (3, 5), "lighting_change": (2, 2)}
SHIRTS = [(40, 40, 160), (150, 60, 30), (40, 120, 40), (200, 200, 200), (30, 30, 30), (20, 140, 200),
          (120, 40, 120), (90, 90, 90)]
TROUSERS = [(60, 40, 30), (30, 30, 30), (110, 100, 90), (140, 90, 40), (70, 110, 150)]
SKINS = [(150, 180, 225), (110, 140, 190), (60, 90, 140), (90, 120, 170)]


@dataclass(frozen=True)
class TruthItem:
    """One ground-truth fact about a frame."""

    type: str
    episode_id: str
    bbox: tuple[int, int, int, int] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"type": self.type, "episode_id": self.episode_id,
                "bbox": list(self.bbox) if self.bbox is not None else None}


@dataclass
class SynthFrame:
    """One synthesized frame of one camera and its truth."""

    camera_id: str
    seq: int
    image: np.ndarray
    truth: list[TruthItem]


@dataclass(frozen=True)
class Happening:
    """A scripted event: its type, truth episode id, first frame, truth length and drawn parameters."""

    type: str
    episode_id: str
    start: int
    length: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """First frame after the happening's span."""
        return self.start + self.length


def stable_rng(seed: int, camera_id: str, purpose: str) -> np.random.Generator:
    """A generator seeded from a hash that is stable across runs and machines (unlike hash())."""
    digest = hashlib.sha256(f"{seed}|{camera_id}|{purpose}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def camera_ids(count: int) -> list[str]:
    """Camera ids cam-01, cam-02, ..."""
    return [f"cam-{i:02d}" for i in range(1, count + 1)]


def load_backgrounds(folder: Path) -> list[np.ndarray]:
    """BGR images from the folder's .jpg/.jpeg/.png files, in name order; raises if there are none."""
    paths = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in BACKGROUND_SUFFIXES)
    images = [img for img in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths) if img is not None]
    if not images:
        raise FileNotFoundError(
            f"no readable background images (.jpg/.png) in {folder}; run `python -m image_pipeline.sim.backgrounds`"
        )
    return images


def _params(kind: str, rng: np.random.Generator, length: int) -> dict[str, Any]:
    """Draw the happening's own parameters (paths, gains, shifts) from the script generator."""
    if kind == "intrusion":
        count = 1 if rng.random() < 0.6 else 2
        walkers = []
        for i in range(count):
            delay = 0 if i == 0 else int(rng.integers(2, max(3, length // 3)))
            near_first = rng.random() < 0.5
            far, near = rng.uniform(0.6, 0.75), rng.uniform(0.85, 0.98)
            walkers.append(Walker(
                direction=1 if rng.random() < 0.5 else -1, delay=delay, frames=length - delay,
                feet_from=near if near_first else far, feet_to=far if near_first else near,
                scale=float(rng.uniform(0.45, 0.65)),
                shirt=SHIRTS[int(rng.integers(len(SHIRTS)))], trousers=TROUSERS[int(rng.integers(len(TROUSERS)))],
                skin=SKINS[int(rng.integers(len(SKINS)))], gait=float(rng.uniform(0.6, 1.1)),
            ))
        return {"walkers": walkers}
    if kind == "tamper":
        mode = "cover" if rng.random() < 0.5 else "blur"
        return {"mode": mode, "sigma": float(rng.uniform(0.018, 0.03)), "coverage": float(rng.uniform(0.88, 1.0)),
                "colour": tuple(int(c) for c in rng.integers(20, 120, 3)), "side": int(rng.integers(4))}
    if kind == "scene_change":
        mode = ("shift", "rotate", "both")[int(rng.integers(3))]
        shift = float(rng.uniform(0.06, 0.15)) if mode != "rotate" else float(rng.uniform(0.0, 0.02))
        angle = float(rng.uniform(3, 10)) if mode == "both" else float(rng.uniform(6, 10)) if mode == "rotate" else 0.0
        return {"shift": shift, "dy": float(rng.uniform(-0.04, 0.04)), "angle": angle,
                "sign": 1 if rng.random() < 0.5 else -1, "asign": 1 if rng.random() < 0.5 else -1,
                "jitter": [(float(a), float(b)) for a, b in rng.uniform(-1, 1, (length, 2))]}
    if kind == "lighting_change":
        return {"factor": float(rng.uniform(0.5, 0.62)), "up": float(rng.uniform(1.35, 1.6)),
                "brighten": bool(rng.random() < 0.3),
                "tilt": float(rng.uniform(-0.12, 0.12)), "tilt_angle": float(rng.uniform(0, math.pi))}
    raise ValueError(f"unknown happening type {kind!r}")


def plan_script(camera_id: str, frames: int, seed: int) -> list[Happening]:
    """The camera's script of happenings, in time order, drawn from (seed, camera_id)."""
    rng = stable_rng(seed, camera_id, "script")
    kinds = [str(k) for k in rng.permutation(list(VISUAL_EVENT_TYPES))]
    extra_choices = ["intrusion", "intrusion", "tamper", "lighting_change", "scene_change"]
    for _ in range(max(0, (frames - 90) // 50)):
        kinds.insert(int(rng.integers(0, len(kinds) + 1)), extra_choices[int(rng.integers(len(extra_choices)))])
    lengths = [int(rng.integers(LENGTHS[k][0], LENGTHS[k][1] + 1)) for k in kinds]
    gaps = [int(rng.integers(*GAP)) for _ in kinds]
    lead = int(rng.integers(*LEAD_IN))
    # Drop happenings from the end until the minimum layout fits, then shrink the drawn slack to fit.
    while kinds and LEAD_IN[0] + sum(LENGTHS[k][0] for k in kinds) + GAP[0] * (len(kinds) - 1) + TAIL > frames:
        kinds.pop()
    lengths, gaps = lengths[:len(kinds)], gaps[:len(kinds)]
    fixed = LEAD_IN[0] + sum(LENGTHS[k][0] for k in kinds) + GAP[0] * max(0, len(kinds) - 1) + TAIL
    slack = (lead - LEAD_IN[0]) + sum(n - LENGTHS[k][0] for k, n in zip(kinds, lengths, strict=True)) \
        + sum(g - GAP[0] for g in gaps[:-1])
    ratio = min(1.0, (frames - fixed) / slack) if slack > 0 else 0.0
    t = LEAD_IN[0] + int((lead - LEAD_IN[0]) * ratio)
    script = []
    for i, kind in enumerate(kinds):
        length = LENGTHS[kind][0] + int((lengths[i] - LENGTHS[kind][0]) * ratio)
        ep = f"{camera_id}-ep{i + 1:02d}"
        script.append(Happening(kind, ep, t, length, _params(kind, rng, length)))
        t += length + GAP[0] + int((gaps[i] - GAP[0]) * ratio)
    return script


def single_happening(kind: str, camera_id: str, start: int, length: int, seed: int) -> list[Happening]:
    """A script with one happening of the given type (for tests and demos), parameters drawn from seed."""
    if kind not in VISUAL_EVENT_TYPES:
        raise ValueError(f"unknown happening type {kind!r}")
    rng = stable_rng(seed, camera_id, f"single-{kind}")
    return [Happening(kind, f"{camera_id}-ep01", start, length, _params(kind, rng, length))]


def _world(background: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return cv2.resize(background, (int(w * WORLD_MARGIN), int(h * WORLD_MARGIN)), interpolation=cv2.INTER_AREA)


def _view(world: np.ndarray, size: tuple[int, int], pose: tuple[float, float, float]) -> np.ndarray:
    """The camera's view of the world at pose (dx, dy in pixels, angle in degrees)."""
    w, h = size
    wh, ww = world.shape[:2]
    dx, dy, angle = pose
    m = cv2.getRotationMatrix2D((ww / 2 + dx, wh / 2 + dy), angle, 1.0)
    m[0, 2] -= (ww - w) / 2 + dx
    m[1, 2] -= (wh - h) / 2 + dy
    return cv2.warpAffine(world, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def _gain_map(size: tuple[int, int], level: float, tilt: float, tilt_angle: float) -> np.ndarray:
    """Per-pixel light level: a global gain with a gentle gradient, as lamps are never uniform."""
    w, h = size
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    ramp = math.cos(tilt_angle) * xs + math.sin(tilt_angle) * ys
    return (level * (1.0 + tilt * ramp)).astype(np.float32)[:, :, None]


def _cover(size: tuple[int, int], params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A near-uniform occluder (hand, cloth, tape) and its alpha over the frame."""
    w, h = size
    colour = np.array(params["colour"], np.float32)
    grad = _gain_map(size, 1.0, 0.4, float(rng.uniform(0, math.pi)))
    coarse = rng.uniform(-6, 6, (4, 4)).astype(np.float32)
    texture = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[:, :, None]
    image = colour[None, None, :] * grad + texture
    alpha: np.ndarray = np.ones((h, w), np.float32)
    free = 1.0 - params["coverage"]  # a strip of the view may stay visible at one side
    side = params["side"]
    if free > 0:
        if side == 0:
            alpha[:, : int(w * free)] = 0
        elif side == 1:
            alpha[:, w - int(w * free):] = 0
        elif side == 2:
            alpha[: int(h * free)] = 0
        else:
            alpha[h - int(h * free):] = 0
    soft = max(3, (w // 40) | 1)
    alpha = cv2.GaussianBlur(alpha, (soft, soft), 0)[:, :, None]
    return image, alpha


def synthesize_camera(camera_id: str, frames: int, seed: int, size: tuple[int, int],
                      backgrounds: list[np.ndarray], noise: float = 1.0,
                      script: list[Happening] | None = None) -> Iterator[SynthFrame]:
    """Yield the camera's frames (BGR uint8, size=(width, height)) with their ground truth.

    `script` replaces the planned script (e.g. a single happening for a test).
    """
    if not backgrounds:
        raise ValueError("synthesize_camera needs at least one background image")
    w, h = size
    script = plan_script(camera_id, frames, seed) if script is None else script
    setup = stable_rng(seed, camera_id, "setup")
    render = stable_rng(seed, camera_id, "render")
    # Sensor noise comes from OpenCV's generator (about 4x faster than numpy's normal draw), seeded
    # per frame from its own stream, so a camera's frames never depend on which other cameras run.
    noise_seeds = stable_rng(seed, camera_id, "noise")
    noise_buf = np.empty((h, w, 3), np.float32)
    world = _world(backgrounds[int(setup.integers(len(backgrounds)))], size)
    sigma = float(setup.uniform(2.0, 4.0)) * noise
    drift_amp, drift_period = float(setup.uniform(0.02, 0.04)), float(setup.uniform(1.5, 3.0)) * max(frames, 50)
    drift_phase = float(setup.uniform(0, 2 * math.pi))
    pose = (0.0, 0.0, 0.0)
    views: dict[tuple[float, float, float], np.ndarray] = {}
    light_level = 1.0
    views_base = _view(world, size, pose)
    gain = _gain_map(size, 1.0, 0.0, 0.0)
    covers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    figure_colours: dict[str, list[Walker]] = {}
    for seq in range(frames):
        truth: list[TruthItem] = []
        jitter = (0.0, 0.0)
        for hap in script:
            if hap.type == "scene_change" and seq == hap.start:
                p = hap.params
                dx = p["sign"] * p["shift"] * w
                if abs(pose[0] + dx) > 0.2 * w:  # stay inside the world: knock it back the other way
                    dx = -dx
                pose = (pose[0] + dx, max(-0.1 * h, min(0.1 * h, pose[1] + p["dy"] * h)),
                        pose[2] + p["asign"] * p["angle"])
            if hap.type == "scene_change" and hap.start <= seq < hap.end:
                # The camera wobbles as it settles: a decaying jitter on top of the new pose.
                k = seq - hap.start
                jx, ja = hap.params["jitter"][k]
                jitter = (jx * 0.02 * w * 0.5**k, ja * 0.5**k)
                truth.append(TruthItem(hap.type, hap.episode_id, None))
            if hap.type == "lighting_change" and seq == hap.start:
                p = hap.params
                # Lights alternate: from normal they go off (or brighter); the next switch restores them.
                if abs(light_level - 1.0) > 0.05:
                    light_level = 1.0
                else:
                    # Brightening a view that is already bright only clips it to white, which a camera with
                    # auto-exposure would not show; such views get dimmed instead.
                    bright = float(np.percentile(cv2.cvtColor(views_base, cv2.COLOR_BGR2GRAY), 95))
                    up = min(p["up"], 235.0 / max(bright, 1.0))
                    light_level = up if p["brighten"] and up >= 1.3 else p["factor"]
                gain = _gain_map(size, light_level, p["tilt"], p["tilt_angle"])
            if hap.type in ("lighting_change", "tamper") and hap.start <= seq < hap.end:
                truth.append(TruthItem(hap.type, hap.episode_id, None))
        frame_pose = (pose[0] + jitter[0], pose[1], pose[2] + jitter[1])
        if frame_pose not in views:
            if len(views) > 8:
                views.clear()
            views[frame_pose] = _view(world, size, frame_pose)
        image = views[frame_pose].copy()
        for hap in script:
            if hap.type != "intrusion" or not hap.start <= seq < hap.end:
                continue
            walkers = figure_colours.get(hap.episode_id)
            if walkers is None:
                walkers = [_dress(wk, image, hap.length) for wk in hap.params["walkers"]]
                figure_colours[hap.episode_id] = walkers
            for wk in walkers:
                box = draw_walker(image, wk, seq - hap.start, render)
                if box is not None:
                    truth.append(TruthItem("intrusion", hap.episode_id, box))
        drift = 1.0 + drift_amp * math.sin(2 * math.pi * seq / drift_period + drift_phase)
        # cv2.multiply broadcasts nothing, so the gain map is widened to 3 channels once per change.
        if gain.shape[2] != 3:
            gain = np.repeat(gain, 3, axis=2)
        lit: np.ndarray = cv2.multiply(image, gain, dtype=cv2.CV_32F, scale=drift)
        for hap in script:
            if hap.type != "tamper" or not hap.start <= seq < hap.end:
                continue
            if hap.params["mode"] == "blur":
                lit = cv2.GaussianBlur(lit, (0, 0), hap.params["sigma"] * w)
            else:
                if hap.episode_id not in covers:
                    covers[hap.episode_id] = _cover(size, hap.params, render)
                cover, alpha = covers[hap.episode_id]
                lit = lit * (1 - alpha) + cover * alpha
        cv2.setRNGSeed(int(noise_seeds.integers(2**31)))
        cv2.randn(noise_buf, np.zeros(3), np.full(3, sigma))
        lit += noise_buf
        out = np.clip(lit, 0, 255, out=lit).astype(np.uint8)
        yield SynthFrame(camera_id, seq, out, truth)


def _dress(walker: Walker, view: np.ndarray, length: int) -> Walker:
    """Adjust clothing so the figure stands out from the strip of background it walks across."""
    h, w = view.shape[:2]
    ys = []
    for k in range(0, length, max(1, length // 6)):
        geo = walker_geometry(walker, k, (w, h))
        if geo is not None:
            ys.append(geo[1])
    if not ys:
        return walker
    top = int(max(0, min(ys) - max(ys) * walker.scale))
    band = cv2.cvtColor(view[top:int(min(h, max(ys))) + 1], cv2.COLOR_BGR2GRAY)
    bg = float(np.median(band))
    return Walker(
        walker.direction, walker.delay, walker.frames, walker.feet_from, walker.feet_to, walker.scale,
        contrasting(walker.shirt, bg, 60), contrasting(walker.trousers, bg, 55), contrasting(walker.skin, bg, 40),
        walker.gait,
    )
