"""Score: hand-made truth and events with known precision and recall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from image_pipeline.sim.score import iou, main, score, score_dirs


def truth_rows() -> list[dict[str, Any]]:
    rows = []
    for seq in range(40):
        items: list[dict[str, Any]] = []
        if 5 <= seq <= 10:
            items.append({"type": "intrusion", "episode_id": "cam-01-ep01", "bbox": [100, 100, 20, 40]})
        if 20 <= seq <= 22:
            items.append({"type": "tamper", "episode_id": "cam-01-ep02", "bbox": None})
        if 30 <= seq <= 31:
            items.append({"type": "lighting_change", "episode_id": "cam-01-ep03", "bbox": None})
        rows.append({"image_id": f"cam-01-{seq:08d}", "camera_id": "cam-01", "seq": seq, "truth": items})
    return rows


def event(kind: str, seqs: list[int], box: list[int] | None = None, camera: str = "cam-01") -> dict[str, Any]:
    return {"event_id": f"{camera}-{kind}-{seqs[0]:06d}", "event_type": kind, "camera_id": camera,
            "first_seq": seqs[0], "last_seq": seqs[-1],
            "frames": [{"image_id": f"{camera}-{s:08d}", "seq": s, "score": 0.5, "boxes": [box] if box else []}
                       for s in seqs]}


def test_iou_of_known_boxes() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == 50 / 150
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_known_precision_recall_and_false_alarms() -> None:
    events = [
        event("intrusion", [6, 7, 8], [102, 98, 22, 44]),  # right place: found
        event("intrusion", [31, 32], [0, 0, 30, 60]),  # during the lighting change: false and spurious
        event("tamper", [19, 20, 21]),  # overlaps the span: found
        event("scene_change", [35]),  # nothing there: false alarm
    ]
    rep = score(truth_rows(), events).to_dict()
    t = rep["types"]
    assert t["intrusion"] == {"true_episodes": 1, "found": 1, "events": 2, "false_alarms": 1,
                              "precision": 0.5, "recall": 1.0}
    assert t["tamper"]["precision"] == 1.0 and t["tamper"]["recall"] == 1.0
    assert t["scene_change"]["precision"] == 0.0 and t["scene_change"]["recall"] is None
    assert t["lighting_change"]["recall"] == 0.0 and t["lighting_change"]["precision"] is None
    assert rep["spurious_intrusions"] == 1


def test_intrusion_in_the_span_but_wrong_place_is_not_found() -> None:
    rep = score(truth_rows(), [event("intrusion", [6, 7], [200, 10, 20, 40])])
    assert rep.types["intrusion"].found == 0 and rep.types["intrusion"].false_alarms == 1
    assert rep.spurious_intrusions == 0  # it overlaps the true intrusion's frames, just not its place


def test_other_camera_or_type_does_not_match() -> None:
    rep = score(truth_rows(), [event("tamper", [20], camera="cam-02"), event("scene_change", [21])])
    assert rep.types["tamper"].found == 0 and rep.types["scene_change"].false_alarms == 1


def test_score_dirs_reads_records_and_ignores_other_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, events = tmp_path / "image_database", tmp_path / "image_event_database"
    images.mkdir()
    events.mkdir()
    (images / "ground_truth.jsonl").write_text("\n".join(json.dumps(r) for r in truth_rows()) + "\n")
    rec = {**event("tamper", [21, 22]), "paths": {"key": "x.jpg"}}
    (events / "a.json").write_text(json.dumps(rec))
    (events / "index.json").write_text(json.dumps({"not": "an event"}))
    rep = score_dirs(images, events)
    assert rep.types["tamper"].found == 1 and sum(s.events for s in rep.types.values()) == 1
    assert main(["--data-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["types"]["tamper"]["recall"] == 1.0
    assert "precision" in rep.format_table()
