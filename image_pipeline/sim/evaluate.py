"""Offline evaluation: synthesize scenarios, JPEG round-trip, detect, group into episodes and score.

No Kafka and no disk: the same pure pieces the pipeline stages wrap, run in memory.
`python -m image_pipeline.sim.evaluate` runs a suite over seeds, sizes, noise levels and every background,
and prints per-type precision/recall for the tuning seeds and for hold-out seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from image_pipeline.config import PROJECT_ROOT, LimitsConfig
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.sim.score import ScoreReport, combine, score
from image_pipeline.sim.synthesis import camera_ids, load_backgrounds, synthesize_camera
from image_pipeline.vision.detection import CameraDetector, DetectorParams
from image_pipeline.vision.detector import decode_width
from image_pipeline.vision.episodes import EpisodeParams, EpisodeTracker
from image_pipeline.vision.imaging import decode_at_least, encode_jpeg

logger = logging.getLogger(__name__)
TUNING_SEEDS = (1, 2, 3, 4, 5, 6, 9101, 9102, 9103, 9104, 9105, 9106)  # seeds looked at while tuning
# Never looked at while tuning. (An earlier hold-out set, 9101-9106, exposed a tamper-vs-scene-change
# confusion on a dim, noisy view; after the fix it joined the tuning seeds and this set replaced it.)
HOLDOUT_SEEDS = (9201, 9202, 9203, 9204, 9205, 9206)
SIZES = ((320, 240), (640, 480), (1280, 720))
NOISES = (0.5, 1.0, 1.5, 2.0)
FPS = 10.0


@dataclass
class Timing:
    """Detector CPU time, for the performance report."""

    frames: int = 0
    seconds: float = 0.0
    per_size: dict[str, list[float]] = field(default_factory=dict)

    def add(self, size: tuple[int, int], seconds: float) -> None:
        """Account one frame's detector time."""
        self.frames += 1
        self.seconds += seconds
        self.per_size.setdefault(f"{size[0]}x{size[1]}", []).append(seconds)

    def ms_per_frame(self) -> dict[str, float]:
        """Mean detector milliseconds per frame, by frame size."""
        return {k: 1000.0 * sum(v) / len(v) for k, v in sorted(self.per_size.items())}


def run_camera(camera_id: str, frames: int, seed: int, size: tuple[int, int], noise: float,
               backgrounds: list[np.ndarray], params: DetectorParams | None = None,
               episode_params: EpisodeParams | None = None,
               timing: Timing | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One camera end to end in memory: (truth rows, final event records)."""
    detector = CameraDetector(params)
    tracker = EpisodeTracker(camera_id, episode_params)
    truth_rows: list[dict[str, Any]] = []
    records: dict[str, dict[str, Any]] = {}
    for sf in synthesize_camera(camera_id, frames, seed, size, backgrounds, noise):
        iid = image_id_for(camera_id, sf.seq)
        truth_rows.append({"image_id": iid, "camera_id": camera_id, "seq": sf.seq,
                           "truth": [t.to_dict() for t in sf.truth]})
        # The analyzer sees what the receiver stored, a JPEG at quality 90, decoded as the analyzer does.
        decoded, info = decode_at_least(encode_jpeg(sf.image, 90), LimitsConfig(), decode_width("blocks"))
        start = time.process_time()
        detections = detector.process(decoded, (info.width, info.height))
        if timing is not None:
            timing.add(size, time.process_time() - start)
        for update in tracker.observe(iid, sf.seq, sf.seq / FPS, detections):
            records[update.episode.event_id] = update.episode.to_record()
    for update in tracker.finish():
        records[update.episode.event_id] = update.episode.to_record()
    return truth_rows, [records[k] for k in sorted(records)]


def evaluate_scenario(seed: int, cameras: int, frames: int, size: tuple[int, int], noise: float,
                      backgrounds: list[np.ndarray], params: DetectorParams | None = None,
                      timing: Timing | None = None) -> ScoreReport:
    """Score one scenario (all its cameras) end to end in memory."""
    truth: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for cam in camera_ids(cameras):
        t, e = run_camera(cam, frames, seed, size, noise, backgrounds, params, timing=timing)
        truth.extend(t)
        events.extend(e)
    return score(truth, events)


def scenarios(seeds: tuple[int, ...]) -> list[tuple[int, tuple[int, int], float]]:
    """(seed, size, noise) triples: each seed meets a different size and noise, cycling through all."""
    combos = [(size, noise) for noise, size in itertools.product(NOISES, SIZES)]  # sizes vary fastest
    offset = seeds[0] % len(combos) if seeds else 0
    return [(seed, *combos[(i + offset) % len(combos)]) for i, seed in enumerate(seeds)]


def run_suite(seeds: tuple[int, ...], cameras: int, frames: int, backgrounds: list[np.ndarray],
              timing: Timing | None = None, verbose: bool = True) -> ScoreReport:
    """Aggregate report over the scenarios of the given seeds."""
    reports = []
    for seed, size, noise in scenarios(seeds):
        rep = evaluate_scenario(seed, cameras, frames, size, noise, backgrounds, timing=timing)
        if verbose:
            summary = " ".join(f"{t}={s.found}/{s.true_episodes}+{s.false_alarms}fa" for t, s in rep.types.items())
            logger.info("scenario seed=%d size=%dx%d noise=%.1f %s spurious=%d",
                        seed, size[0], size[1], noise, summary, rep.spurious_intrusions)
        reports.append(rep)
    return combine(reports)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation suite and print per-type precision/recall."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--originals", type=Path, default=PROJECT_ROOT / "image_original")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="*", help="override the tuning seeds")
    parser.add_argument("--holdout", type=int, nargs="*", help="override the hold-out seeds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    backgrounds = load_backgrounds(args.originals)
    timing = Timing()
    results = {}
    suites = (("tuning", tuple(args.seeds or TUNING_SEEDS)), ("holdout", tuple(args.holdout or HOLDOUT_SEEDS)))
    for name, seeds in suites:
        report = run_suite(seeds, args.cameras, args.frames, backgrounds, timing)
        results[name] = {"seeds": list(seeds), "scenarios": [
            {"seed": s, "size": f"{z[0]}x{z[1]}", "noise": n} for s, z, n in scenarios(seeds)], **report.to_dict()}
        if not args.json:
            print(f"\n== {name} seeds {list(seeds)} ({args.cameras} cameras x {args.frames} frames each)")
            print(report.format_table())
    ms = timing.ms_per_frame()
    if args.json:
        print(json.dumps({**results, "detector_ms_per_frame": ms}, indent=2))
    else:
        print("\ndetector CPU ms/frame: " + ", ".join(f"{k}={v:.2f}" for k, v in ms.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
