"""Event records on disk: the machine-readable JSON, a text version and the derived images."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from image_pipeline.config import Config
from image_pipeline.records.imagedb import stored_relpath
from image_pipeline.storage import atomic_write_bytes, atomic_write_json, atomic_write_text, check_id, safe_join
from image_pipeline.vision.episodes import Episode
from image_pipeline.vision.imaging import encode_jpeg


def event_paths(cfg: Config, episode: Episode) -> dict[str, str | None]:
    """Where an event's files are, relative to the data folder."""
    event_id = check_id(episode.event_id, "event_id")
    events = cfg.paths.events
    key = episode.frames[episode.key_index].image_id
    previous = _previous_of_key(episode)

    def image(image_id: str) -> str:
        return f"{cfg.paths.images}/{stored_relpath(cfg.images_dir, episode.camera_id, image_id)}"

    return {
        "record": f"{events}/{event_id}.json",
        "text": f"{events}/{event_id}.txt",
        "diff": f"{events}/{event_id}_diff.jpg",
        "annotated": f"{events}/{event_id}_annotated.jpg",
        "key_image": image(key),
        "previous_image": image(previous) if previous else None,
    }


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
    record = episode.to_record()
    record["paths"] = event_paths(cfg, episode)
    record["key_previous_image_id"] = _previous_of_key(episode)
    return record


def describe(record: dict[str, Any]) -> str:
    """A human-readable version of an event record."""
    def when(ts: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"

    key = next((f for f in record["frames"] if f["image_id"] == record["key_image_id"]), None)
    boxes = ", ".join(str(b) for b in (key or {}).get("boxes", [])) or "none"
    paths = record["paths"]
    lines = [
        f"Event {record['event_id']}: {record['event_type'].replace('_', ' ')} on camera {record['camera_id']}",
        f"Status:      {record['status']}",
        f"Score:       {record['score']:.2f}",
        f"Frames:      {record['frame_count']} (seq {record['first_seq']} to {record['last_seq']})",
        f"First image: {record['first_image_id']}",
        f"Last image:  {record['last_image_id']}",
        f"Captured:    {when(record.get('started_at'))} to {when(record.get('ended_at'))}",
        f"Key frame:   {record['key_image_id']} (boxes: {boxes})",
        "",
        "Files (relative to the data folder):",
        *(f"  {name:<15} {path}" for name, path in paths.items() if path),
    ]
    return "\n".join(lines) + "\n"


def annotate(image: np.ndarray, boxes: list[list[int]], label: str) -> np.ndarray:
    """A copy of the frame with boxes and a label banner drawn on it."""
    out = image.copy()
    for x, y, w, h in boxes:
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), 2)
    cv2.rectangle(out, (0, 0), (out.shape[1], 24), (0, 0, 0), -1)
    cv2.putText(out, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class EventWriter:
    """Writes an event's files atomically; the same episode always gives the same bytes."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def write(self, episode: Episode, key_image: np.ndarray | None, difference: np.ndarray | None) -> dict[str, Any]:
        """Write the record and text; also the derived images when the key frame is given."""
        record = event_record(self.cfg, episode)
        paths = record["paths"]
        root = self.cfg.data_dir
        if key_image is not None:
            key = episode.frames[episode.key_index]
            label = f"{episode.event_type} {episode.camera_id} {key.image_id} score {key.score:.2f}"
            boxed = annotate(key_image, [list(b) for b in key.boxes], label)
            atomic_write_bytes(safe_join(root, paths["annotated"]), encode_jpeg(boxed, 85))
            diff = difference if difference is not None else np.zeros(key_image.shape[:2], np.uint8)
            atomic_write_bytes(safe_join(root, paths["diff"]), encode_jpeg(diff, 85))
        atomic_write_text(safe_join(root, paths["text"]), describe(record))
        atomic_write_json(safe_join(root, paths["record"]), record)
        return paths
