"""Frame-level scoring of intrusion boxes against per-frame ground-truth objects (real footage).

The definitions are fixed so figures compare across methods and reports:

- recall: ground-truth objects whose centre lies inside some detected box, over all ground-truth objects;
- precision: detected boxes holding at least one ground-truth centre, over all detected boxes;
- F1: 2PR / (P + R);
- strict: one-to-one greedy matching at IoU >= 0.3 (highest IoU pairs first), giving strict P and R.

Only the frames in scope are scored (after the warm-up), for every method alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from image_pipeline.model import Box
from image_pipeline.sim.score import IOU_MIN, iou


@dataclass
class FrameCounts:
    """Summed counts of one method over the scored frames of one clip."""

    frames: int = 0
    truth: int = 0  # ground-truth objects
    boxes: int = 0  # detected boxes
    truth_hit: int = 0  # truth objects whose centre is inside some box
    boxes_hit: int = 0  # boxes holding at least one truth centre
    matched: int = 0  # one-to-one IoU >= 0.3 pairs

    @property
    def precision(self) -> float | None:
        """Boxes holding a truth centre over all boxes; None without boxes."""
        return self.boxes_hit / self.boxes if self.boxes else None

    @property
    def recall(self) -> float | None:
        """Truth objects whose centre is boxed over all truth objects; None without truth."""
        return self.truth_hit / self.truth if self.truth else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of centre-hit precision and recall (0 when either is 0 or undefined)."""
        return _f1(self.precision, self.recall)

    @property
    def strict_precision(self) -> float | None:
        """One-to-one IoU matches over all boxes."""
        return self.matched / self.boxes if self.boxes else None

    @property
    def strict_recall(self) -> float | None:
        """One-to-one IoU matches over all truth objects."""
        return self.matched / self.truth if self.truth else None

    def add_frame(self, truth: Sequence[Box], boxes: Sequence[Box]) -> None:
        """Account one scored frame."""
        self.frames += 1
        self.truth += len(truth)
        self.boxes += len(boxes)
        centres = [_centre(t) for t in truth]
        self.truth_hit += sum(1 for c in centres if any(_inside(c, b) for b in boxes))
        self.boxes_hit += sum(1 for b in boxes if any(_inside(c, b) for c in centres))
        self.matched += greedy_matches(truth, boxes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts and ratios."""
        return {"frames": self.frames, "truth": self.truth, "boxes": self.boxes, "truth_hit": self.truth_hit,
                "boxes_hit": self.boxes_hit, "matched": self.matched, "precision": self.precision,
                "recall": self.recall, "f1": self.f1, "strict_precision": self.strict_precision,
                "strict_recall": self.strict_recall, "strict_f1": _f1(self.strict_precision, self.strict_recall)}


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _centre(box: Box) -> tuple[float, float]:
    return box[0] + box[2] / 2.0, box[1] + box[3] / 2.0


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[0] + box[2] and box[1] <= point[1] <= box[1] + box[3]


def greedy_matches(truth: Sequence[Box], boxes: Sequence[Box]) -> int:
    """Pairs of a one-to-one greedy matching (highest IoU first) with IoU >= 0.3."""
    pairs = sorted(((iou(t, b), i, j) for i, t in enumerate(truth) for j, b in enumerate(boxes)), reverse=True)
    used_t: set[int] = set()
    used_b: set[int] = set()
    for value, i, j in pairs:
        if value < IOU_MIN:
            break
        if i not in used_t and j not in used_b:
            used_t.add(i)
            used_b.add(j)
    return len(used_t)


def score_frames(truth: Mapping[int, Sequence[Box]], detected: Mapping[int, Sequence[Box]],
                 frames: Iterable[int]) -> FrameCounts:
    """Score the detected boxes of each frame in `frames` against that frame's truth boxes."""
    counts = FrameCounts()
    for frame in frames:
        counts.add_frame(truth.get(frame, ()), detected.get(frame, ()))
    return counts


def boxes_by_frame(records: Iterable[Mapping[str, Any]], camera_id: str | None,
                   seq_offset: int) -> dict[int, list[Box]]:
    """Intrusion boxes per frame number (seq + seq_offset) from event records, optionally of one camera."""
    out: dict[int, list[Box]] = {}
    for record in records:
        if record.get("event_type") != "intrusion" or (camera_id and record.get("camera_id") != camera_id):
            continue
        for frame in record.get("frames") or []:
            boxes = out.setdefault(int(frame["seq"]) + seq_offset, [])
            boxes.extend(tuple(int(v) for v in box) for box in frame.get("boxes") or [])  # type: ignore[misc]
    return out


def format_clip_table(clip: str, rows: Mapping[str, FrameCounts]) -> str:
    """A fixed-width text table: one line per method on one clip."""
    head = (f"{'clip':<18}{'method':<10}{'frames':>7}{'truth':>7}{'boxes':>7}{'P':>7}{'R':>7}{'F1':>7}"
            f"{'strictP':>9}{'strictR':>9}")
    lines = [head]
    for method, c in rows.items():
        lines.append(f"{clip:<18}{method:<10}{c.frames:>7}{c.truth:>7}{c.boxes:>7}{_fmt(c.precision):>7}"
                     f"{_fmt(c.recall):>7}{_fmt(c.f1):>7}{_fmt(c.strict_precision):>9}{_fmt(c.strict_recall):>9}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
