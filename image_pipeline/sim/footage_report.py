"""`python -m image_pipeline.score --truth mot FILE | masks DIR`: score a real clip, side by side with baselines.

Ours is read from the event database of a `--source` (or video) run of that clip, or, with
`--detector NAME`, run in memory on the clip's frames; `--baseline mog2|knn` runs the classical
baselines on the same frames. One table (or JSON document) per clip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from image_pipeline.config import ConfigError, load_config
from image_pipeline.sim.footage import (
    MOT_WARMUP,
    ClipTruth,
    FootageError,
    camera_id_for,
    frame_files,
    load_cdnet,
    load_mot,
    run_detector,
)
from image_pipeline.sim.frame_score import FrameCounts, boxes_by_frame, format_clip_table, score_frames
from image_pipeline.sim.score import load_event_records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The real-footage options of the score command."""
    parser.add_argument("--truth", nargs=2, metavar=("KIND", "PATH"),
                        help="score real footage: 'mot FILE' (MOTChallenge gt) or 'masks DIR' (a CDnet clip)")
    parser.add_argument("--frames", type=Path, help="the clip's frames (default for masks: DIR/input)")
    parser.add_argument("--camera-id", help="camera id of the run's events (default: the frames folder's name)")
    parser.add_argument("--detector", help="run this detector in memory instead of reading the event database")
    parser.add_argument("--baseline", action="append", choices=("mog2", "knn"), default=[],
                        help="also run a classical baseline on the same frames (repeatable)")
    parser.add_argument("--seq-offset", type=int, default=1, help="frame number = seq + this (default 1)")
    parser.add_argument("--warmup", type=int, default=MOT_WARMUP, help="MOT frames not scored at the start")
    parser.add_argument("--clip", help="clip name in the report (default: from the truth path)")


def footage_main(args: argparse.Namespace) -> int:
    """Score one clip for ours and the asked baselines; print a table or JSON."""
    try:
        report = footage_report(args)
    except (FootageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        rows = {m: _counts(d) for m, d in report["methods"].items()}
        print(format_clip_table(report["clip"], rows))
    return 0


def footage_report(args: argparse.Namespace) -> dict[str, Any]:
    """The per-method scores of one clip as a JSON-ready dict."""
    kind, where = args.truth[0], Path(args.truth[1])
    frames_dir = args.frames
    if frames_dir is None and kind == "masks":
        frames_dir = (where.parent if where.name == "groundtruth" else where) / "input"
    files = frame_files(frames_dir) if frames_dir is not None else None
    truth = _load_truth(kind, where, len(files) if files else None, args.warmup)
    if args.clip:
        truth.name = args.clip
    methods: dict[str, FrameCounts] = {}
    if args.detector:
        methods[args.detector] = _run(args.detector, files, truth)
    else:
        cfg = load_config().with_overrides(data_dir=args.data_dir)
        camera = args.camera_id or (camera_id_for(frames_dir) if frames_dir is not None else None)
        detected = boxes_by_frame(load_event_records(cfg.events_dir), camera, args.seq_offset)
        methods["events"] = score_frames(truth.boxes, detected, truth.scored_frames())
    for name in args.baseline:
        methods[name] = _run(name, files, truth)
    return {"clip": truth.name, "first_frame": truth.first, "last_frame": truth.last,
            "methods": {m: c.to_dict() for m, c in methods.items()}}


def _load_truth(kind: str, where: Path, frame_count: int | None, warmup: int) -> ClipTruth:
    if kind == "mot":
        return load_mot(where, frame_count, warmup)
    if kind == "masks":
        return load_cdnet(where)
    raise FootageError(f"--truth {kind}: unknown kind (mot or masks)")


def _run(name: str, files: list[Path] | None, truth: ClipTruth) -> FrameCounts:
    if files is None:
        raise FootageError(f"running {name} needs the clip's frames (--frames DIR)")
    # Frames after the last scored one are never fed: they cannot change the score.
    records = run_detector(name, files, frames=range(1, truth.last + 1))
    return score_frames(truth.boxes, boxes_by_frame(records, None, 1), truth.scored_frames())


def _counts(d: dict[str, Any]) -> FrameCounts:
    keys = ("frames", "truth", "boxes", "truth_hit", "boxes_hit", "matched")
    return FrameCounts(**{k: int(d[k]) for k in keys})
