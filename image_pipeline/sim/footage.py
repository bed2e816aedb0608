"""Real footage with published ground truth: load the truth, run detectors on the frames, score per clip.

Two truth formats:

- `mot`: a MOTChallenge text file, `frame,id,x,y,w,h[,conf,class,visibility]`, 1-based frames. Rows whose
  conf is 0 (MOT16+ "ignore") or whose class is a known non-pedestrian class are left out. The first
  `warmup` frames (30) are not scored.
- `masks`: a CDnet clip folder (`groundtruth/gt%06d.png`, `temporalROI.txt`). The objects are the
  connected components of the 255-valued (moving) pixels, 30 px or more; only the frames inside
  temporalROI are scored.

Frame numbers are 1-based like both formats; a `--source` run gives the n-th file of the folder seq
n - 1, so frame = seq + seq_offset (1). Detectors run in memory the way the analyzer runs them: each
frame's bytes decoded as wide as the detector asks, per-frame detections grouped into episodes, and
the episodes' per-frame boxes scored. Nothing here reads Kafka or writes to disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import LimitsConfig
from image_pipeline.model import Box
from image_pipeline.records.imagedb import image_id_for
from image_pipeline.vision.detector import decode_width, detector_factory
from image_pipeline.vision.episodes import EpisodeTracker
from image_pipeline.vision.imaging import decode_at_least

MOT_WARMUP = 30  # frames not scored at the start of a MOTChallenge clip, for every method alike
MIN_OBJECT_PX = 30  # smallest CDnet moving component that counts as an object
MOVING = 255  # CDnet label of moving pixels (50 shadow, 85 outside ROI, 170 unknown, 0 static)
# MOTChallenge classes (MOT16+) that are people who can move: pedestrian, person on vehicle.
MOT_PEOPLE = {1, 2}
FRAME_EXTS = (".jpg", ".jpeg", ".png")


class FootageError(ValueError):
    """Truth or frames that cannot be read; the message names the file."""


@dataclass
class ClipTruth:
    """Ground-truth boxes per 1-based frame number, and the frames that are scored."""

    name: str
    boxes: dict[int, list[Box]]
    first: int  # first scored frame
    last: int  # last scored frame

    def scored_frames(self) -> range:
        """The frames in scope."""
        return range(self.first, self.last + 1)


def load_mot(path: Path, frame_count: int | None = None, warmup: int = MOT_WARMUP) -> ClipTruth:
    """MOTChallenge ground truth; frames warmup + 1 .. frame_count (or the last labelled frame) are scored."""
    boxes: dict[int, list[Box]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FootageError(f"{path}: cannot read ({exc.strerror})") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in line.replace(" ", "").split(",")]
        except ValueError as exc:
            raise FootageError(f"{path} line {n}: not a MOTChallenge row: {line[:60]!r}") from exc
        if len(row) < 6:
            raise FootageError(f"{path} line {n}: fewer than 6 fields (frame,id,x,y,w,h)")
        if len(row) >= 7 and row[6] == 0:
            continue  # MOT16+: a box to ignore
        if len(row) >= 8 and 1 <= row[7] <= 12 and int(row[7]) not in MOT_PEOPLE:
            continue  # MOT16+ class other than a moving person; MOT15 puts -1 (world coordinates) here
        x, y, w, h = (round(v) for v in row[2:6])
        boxes.setdefault(int(row[0]), []).append((x, y, w, h))
    last = frame_count if frame_count is not None else max(boxes, default=0)
    return ClipTruth(path.parent.name if path.name in ("gt.txt",) else path.stem, boxes, warmup + 1, last)


def load_cdnet(folder: Path, min_px: int = MIN_OBJECT_PX) -> ClipTruth:
    """CDnet masks: objects are 255-valued components of min_px or more, in the temporalROI frames."""
    clip = folder.parent if folder.name == "groundtruth" else folder
    roi_file = clip / "temporalROI.txt"
    try:
        first, last = (int(v) for v in roi_file.read_text(encoding="utf-8").split()[:2])
    except (OSError, ValueError) as exc:
        raise FootageError(f"{roi_file}: cannot read the scored frame range ({exc})") from exc
    boxes: dict[int, list[Box]] = {}
    for frame in range(first, last + 1):
        path = clip / "groundtruth" / f"gt{frame:06d}.png"
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise FootageError(f"{path}: missing or unreadable ground-truth mask")
        boxes[frame] = mask_objects(mask, min_px)
    return ClipTruth(clip.name, boxes, first, last)


def mask_objects(mask: np.ndarray, min_px: int = MIN_OBJECT_PX) -> list[Box]:
    """Bounding boxes of the 8-connected components of MOVING pixels with at least min_px pixels."""
    moving = np.where(mask == MOVING, 255, 0).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    return sorted(tuple(int(v) for v in stats[i, :4]) for i in range(1, n)  # type: ignore[misc]
                  if stats[i, cv2.CC_STAT_AREA] >= min_px)


def frame_files(folder: Path) -> list[Path]:
    """The folder's images in the order the receiver's --source publishes them (sorted by name)."""
    if not folder.is_dir():
        raise FootageError(f"{folder}: not a folder of frames")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTS and p.is_file())
    if not files:
        raise FootageError(f"{folder}: no .jpg or .png frames")
    return files


def camera_id_for(folder: Path) -> str:
    """The camera id the receiver gives a --source folder by default (its sanitised name)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", folder.resolve().name).strip("-") or "source"


def run_detector(name: str, files: list[Path], camera_id: str = "clip",
                 frames: range | None = None) -> list[dict[str, Any]]:
    """Run detector `name` over the frame files as the analyzer does; the final event records.

    frames limits the work to the files whose 1-based number is in it (the rest are never fed).
    """
    detector = detector_factory(name)()
    tracker = EpisodeTracker(camera_id)
    width = decode_width(name)
    limits = LimitsConfig()
    records: dict[str, dict[str, Any]] = {}
    for seq, data in _frames(files, frames):
        decoded, info = decode_at_least(data, limits, width)
        detections = detector.process(decoded, (info.width, info.height))
        for update in tracker.observe(image_id_for(camera_id, seq), seq, seq / 10.0, detections):
            records[update.episode.event_id] = update.episode.to_record()
    for update in tracker.finish():
        records[update.episode.event_id] = update.episode.to_record()
    return [records[k] for k in sorted(records)]


def _frames(files: list[Path], frames: range | None) -> Iterator[tuple[int, bytes]]:
    for seq, path in enumerate(files):
        if frames is not None and seq + 1 not in frames:
            continue
        yield seq, path.read_bytes()
