"""Score detected events against the synthesized ground truth, episode by episode.

A true episode is the set of truth items of one (camera_id, episode_id). An event finds it when it is
of the same type and camera and its frame span overlaps the episode's span (min..max seq); an
intrusion event must also have, on some frame the episode shares, a box with IoU >= 0.3 against a
truth box. An event is a true positive when it finds at least one true episode.

Undefined ratios are None: precision when there are no events of the type, recall when there are no
true episodes of the type.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from image_pipeline.config import ConfigError, load_config
from image_pipeline.model import VISUAL_EVENT_TYPES, Box

logger = logging.getLogger(__name__)
IOU_MIN = 0.3


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class TypeScore:
    """Episode-level counts of one event type."""

    true_episodes: int = 0
    found: int = 0
    events: int = 0
    true_positives: int = 0

    @property
    def false_alarms(self) -> int:
        """Events that match no true episode."""
        return self.events - self.true_positives

    @property
    def precision(self) -> float | None:
        """Share of events that match a true episode; None without events."""
        return self.true_positives / self.events if self.events else None

    @property
    def recall(self) -> float | None:
        """Share of true episodes found; None without true episodes."""
        return self.found / self.true_episodes if self.true_episodes else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts and ratios."""
        return {"true_episodes": self.true_episodes, "found": self.found, "events": self.events,
                "false_alarms": self.false_alarms, "precision": self.precision, "recall": self.recall}


@dataclass
class ScoreReport:
    """Per-type scores plus intrusions raised where no intrusion happened."""

    types: dict[str, TypeScore] = field(default_factory=lambda: {t: TypeScore() for t in VISUAL_EVENT_TYPES})
    spurious_intrusions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {"types": {t: s.to_dict() for t, s in self.types.items()},
                "spurious_intrusions": self.spurious_intrusions}

    def format_table(self) -> str:
        """A fixed-width text table of the report."""
        lines = [f"{'type':<16}{'true':>6}{'found':>7}{'events':>8}{'false':>7}{'precision':>11}{'recall':>8}"]
        for t, s in self.types.items():
            lines.append(f"{t:<16}{s.true_episodes:>6}{s.found:>7}{s.events:>8}{s.false_alarms:>7}"
                         f"{_fmt(s.precision):>11}{_fmt(s.recall):>8}")
        lines.append(f"spurious intrusions (outside any true intrusion): {self.spurious_intrusions}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def combine(reports: Iterable[ScoreReport]) -> ScoreReport:
    """Sum the counts of several reports (e.g. the scenarios of a suite)."""
    total = ScoreReport()
    for rep in reports:
        for t, s in rep.types.items():
            agg = total.types.setdefault(t, TypeScore())
            agg.true_episodes += s.true_episodes
            agg.found += s.found
            agg.events += s.events
            agg.true_positives += s.true_positives
        total.spurious_intrusions += rep.spurious_intrusions
    return total


@dataclass
class _TrueEpisode:
    camera_id: str
    type: str
    first: int
    last: int
    boxes: dict[int, list[Box]]


def _true_episodes(truth_rows: list[dict[str, Any]]) -> list[_TrueEpisode]:
    grouped: dict[tuple[str, str, str], _TrueEpisode] = {}
    for row in truth_rows:
        seq = int(row["seq"])
        for item in row.get("truth") or []:
            key = (str(row["camera_id"]), str(item["episode_id"]), str(item["type"]))
            ep = grouped.get(key)
            if ep is None:
                ep = grouped[key] = _TrueEpisode(key[0], key[2], seq, seq, defaultdict(list))
            ep.first, ep.last = min(ep.first, seq), max(ep.last, seq)
            if item.get("bbox") is not None:
                ep.boxes[seq].append(tuple(int(v) for v in item["bbox"]))  # type: ignore[arg-type]
    return [grouped[k] for k in sorted(grouped)]


def _span(record: dict[str, Any]) -> tuple[int, int]:
    seqs = [int(f["seq"]) for f in record.get("frames") or []]
    first = int(record.get("first_seq", min(seqs, default=0)))
    last = int(record.get("last_seq", max(seqs, default=first)))
    return first, last


def _matches(record: dict[str, Any], ep: _TrueEpisode) -> bool:
    if record["event_type"] != ep.type or record.get("camera_id") != ep.camera_id:
        return False
    first, last = _span(record)
    if last < ep.first or first > ep.last:
        return False
    if ep.type != "intrusion":
        return True
    for frame in record.get("frames") or []:
        for truth_box in ep.boxes.get(int(frame["seq"]), []):
            for box in frame.get("boxes") or []:
                if iou(tuple(int(v) for v in box), truth_box) >= IOU_MIN:  # type: ignore[arg-type]
                    return True
    return False


def score(truth_rows: list[dict[str, Any]], event_records: list[dict[str, Any]]) -> ScoreReport:
    """Episode-level precision/recall per type for events against truth rows."""
    report = ScoreReport()
    episodes = _true_episodes(truth_rows)
    events = [r for r in event_records if "event_id" in r and "event_type" in r]
    for ep in episodes:
        ts = report.types.setdefault(ep.type, TypeScore())
        ts.true_episodes += 1
        if any(_matches(r, ep) for r in events):
            ts.found += 1
    intrusion_spans = [(e.camera_id, e.first, e.last) for e in episodes if e.type == "intrusion"]
    for record in events:
        ts = report.types.setdefault(str(record["event_type"]), TypeScore())
        ts.events += 1
        if any(_matches(record, ep) for ep in episodes):
            ts.true_positives += 1
        if record["event_type"] == "intrusion":
            seqs = [int(f["seq"]) for f in record.get("frames") or []]
            overlaps = any(cam == record.get("camera_id") and first <= s <= last
                           for cam, first, last in intrusion_spans for s in seqs)
            if not overlaps:
                report.spurious_intrusions += 1
    return report


def score_dirs(images_dir: Path, events_dir: Path) -> ScoreReport:
    """Score the event database against the image database's ground_truth.jsonl."""
    truth_path = images_dir / "ground_truth.jsonl"
    truth_rows = []
    with truth_path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    truth_rows.append(json.loads(line))
                except json.JSONDecodeError:
                    logger.warning("skipping bad truth line file=%s line=%d", truth_path, n)
    return score(truth_rows, load_event_records(events_dir))


def load_event_records(events_dir: Path) -> list[dict[str, Any]]:
    """The event records of an event database folder, in file-name order; unreadable files are skipped."""
    records = []
    for path in sorted(events_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("skipping unreadable event file=%s error=%s", path, exc)
            continue
        if isinstance(data, dict) and "event_id" in data and "event_type" in data:
            records.append(data)
    return records


def main(argv: list[str] | None = None) -> int:
    """Print the score of the data folder's events against its ground truth (or a real clip's, with --truth)."""
    # Imported here: footage_report imports this module.
    from image_pipeline.sim.footage_report import add_arguments, footage_main

    parser = argparse.ArgumentParser(description="Score detected events against the ground truth.")
    parser.add_argument("--data-dir", help="folder holding image_database/ and image_event_database/")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    if args.truth:
        return footage_main(args)
    try:
        cfg = load_config().with_overrides(data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if not (cfg.images_dir / "ground_truth.jsonl").is_file():
        print(f"no ground truth at {cfg.images_dir / 'ground_truth.jsonl'}", file=sys.stderr)
        return 1
    report = score_dirs(cfg.images_dir, cfg.events_dir)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
