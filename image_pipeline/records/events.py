"""Event and alert records: the one home of their file layout, their JSON and text, and the derived images.

Everything here is pure: it returns bytes and paths, and the stage runner writes them. An event's
derived images (annotated and difference) always show the key frame its record names: they are
rendered when the key frame changes and written before the record, which is written last.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import Config
from image_pipeline.model import Box
from image_pipeline.records.imagedb import stored_relpath
from image_pipeline.stages.step import FileWrite
from image_pipeline.storage import check_id, safe_join
from image_pipeline.vision.episodes import Episode
from image_pipeline.vision.imaging import encode_jpeg
from image_pipeline.vision.masking import draw_areas
from image_pipeline.zones import CameraAreas

DERIVED_JPEG_QUALITY = 85


@dataclass(frozen=True)
class EventFiles:
    """Where one event's files are, relative to the data folder."""

    record: str
    text: str
    diff: str
    annotated: str


def event_files(cfg: Config, event_id: str) -> EventFiles:
    """The layout of an event's files in the event database."""
    base = f"{cfg.paths.events}/{check_id(event_id, 'event_id')}"
    return EventFiles(f"{base}.json", f"{base}.txt", f"{base}_diff.jpg", f"{base}_annotated.jpg")


def alert_files(cfg: Config, event_id: str) -> tuple[str, str]:
    """The JSON and text record of an event's alert, relative to the data folder."""
    base = f"{cfg.paths.alerts}/{check_id(event_id, 'event_id')}"
    return f"{base}.json", f"{base}.txt"


def image_path(cfg: Config, camera_id: str, image_id: str) -> str:
    """A stored image's path relative to the data folder."""
    return f"{cfg.paths.images}/{stored_relpath(cfg.images_dir, camera_id, image_id)}"


@dataclass(frozen=True)
class KeyRendering:
    """The derived images of one key frame, as JPEG bytes."""

    image_id: str
    annotated: bytes
    difference: bytes


def annotate(image: np.ndarray, boxes: tuple[Box, ...], label: str) -> np.ndarray:
    """A copy of the frame with boxes and a label banner drawn on it."""
    out = image.copy()
    for x, y, w, h in boxes:
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    cv2.rectangle(out, (0, 0), (out.shape[1], 24), (0, 0, 0), -1)
    cv2.putText(out, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def render_key(event_type: str, camera_id: str, image_id: str, score: float, boxes: tuple[Box, ...],
               image: np.ndarray, difference: np.ndarray | None,
               areas: CameraAreas | None = None) -> KeyRendering:
    """The annotated and difference images of a key frame; the same inputs always give the same bytes.

    The annotated image also shows the camera's motion mask (shaded) and zones (outlined, named).
    """
    label = f"{event_type} {camera_id} {image_id} score {score:.2f}"
    height, width = image.shape[:2]
    diff = difference if difference is not None else np.zeros((height, width), np.uint8)
    if diff.shape[:2] != (height, width):  # a detector's work-size difference, shown at the frame's size
        diff = cv2.resize(diff, (width, height), interpolation=cv2.INTER_LINEAR)
    return KeyRendering(
        image_id,
        encode_jpeg(annotate(draw_areas(image, areas), boxes, label), DERIVED_JPEG_QUALITY),
        encode_jpeg(diff, DERIVED_JPEG_QUALITY),
    )


def _previous_of_key(episode: Episode) -> str | None:
    """The frame before the key frame: an earlier hit, or the frame before the episode."""
    if episode.key_index > 0:
        before = episode.frames[episode.key_index - 1]
        if before.seq == episode.frames[episode.key_index].seq - 1:
            return before.image_id
    if episode.key_index == 0:
        return episode.previous_image_id
    return None


def event_record(cfg: Config, episode: Episode) -> dict[str, Any]:
    """The JSON record of an event: the episode plus where its files are."""
    files = event_files(cfg, episode.event_id)
    key = episode.frames[episode.key_index].image_id
    previous = _previous_of_key(episode)
    record = episode.to_record()
    record["paths"] = {
        "record": files.record,
        "text": files.text,
        "diff": files.diff,
        "annotated": files.annotated,
        "key_image": image_path(cfg, episode.camera_id, key),
        "previous_image": image_path(cfg, episode.camera_id, previous) if previous else None,
    }
    record["key_previous_image_id"] = previous
    return record


def describe(record: dict[str, Any]) -> str:
    """A human-readable version of an event record."""
    key = next((f for f in record["frames"] if f["image_id"] == record["key_image_id"]), None)
    boxes = ", ".join(str(b) for b in (key or {}).get("boxes", [])) or "none"
    lines = [
        f"Event {record['event_id']}: {record['event_type'].replace('_', ' ')} on camera {record['camera_id']}",
        f"Status:      {record['status']}",
        f"Score:       {record['score']:.2f}",
        f"Frames:      {record['frame_count']} (seq {record['first_seq']} to {record['last_seq']})",
        f"First image: {record['first_image_id']}",
        f"Last image:  {record['last_image_id']}",
        f"Captured:    {utc(record.get('started_at'))} to {utc(record.get('ended_at'))}",
        f"Key frame:   {record['key_image_id']} (boxes: {boxes})",
        "",
        "Files (relative to the data folder):",
        *(f"  {name:<15} {path}" for name, path in record["paths"].items() if path),
    ]
    return "\n".join(lines) + "\n"


def utc(ts: float | None) -> str:
    """A capture time as UTC text, or '-'."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def json_bytes(obj: Any) -> bytes:
    """JSON with sorted keys, so identical content gives identical bytes."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def event_writes(
    cfg: Config, episode: Episode, rendering: KeyRendering | None
) -> tuple[dict[str, Any], list[FileWrite]]:
    """The record and the files to write for one episode update; the record comes last.

    `rendering` is given when the key frame's derived images must be (re)written.
    """
    record = event_record(cfg, episode)
    files = event_files(cfg, episode.event_id)
    root = cfg.data_dir
    writes: list[FileWrite] = []
    if rendering is not None:
        writes.append(FileWrite(safe_join(root, files.annotated), rendering.annotated))
        writes.append(FileWrite(safe_join(root, files.diff), rendering.difference))
    writes.append(FileWrite(safe_join(root, files.text), describe(record).encode("utf-8")))
    writes.append(FileWrite(safe_join(root, files.record), json_bytes(record)))
    return record, writes


def read_record(path: Path) -> dict[str, Any] | None:
    """A JSON record from disk, or None when it is missing or unreadable."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
