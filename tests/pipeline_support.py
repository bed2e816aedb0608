"""Helpers for tests that run the real clients against the real broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.runner import PipelineProcesses
from image_pipeline.config import Config
from image_pipeline.kafka.reading import read_recent

TIME_KEYS = {"started_at", "ended_at", "captured_at", "alerted_at", "analyzed_at"}


def without_times(record: Any) -> Any:
    """A record with wall-clock values removed, so two runs of one seed compare equal."""
    if isinstance(record, dict):
        return {k: without_times(v) for k, v in record.items() if k not in TIME_KEYS}
    if isinstance(record, list):
        return [without_times(v) for v in record]
    return record


def event_records(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every event record on disk by event id, without wall-clock values."""
    return {
        p.stem: without_times(json.loads(p.read_text()))
        for p in sorted(cfg.events_dir.glob("*.json"))
    }


def derived_image_bytes(cfg: Config) -> dict[str, bytes]:
    """The bytes of every derived image in the event database."""
    return {p.name: p.read_bytes() for p in sorted(cfg.events_dir.glob("*.jpg"))}


def alert_ids(cfg: Config) -> list[str]:
    """Event ids that have an alert record."""
    return sorted(p.stem for p in cfg.alerts_dir.glob("*.json"))


def alertable(cfg: Config, records: dict[str, dict[str, Any]]) -> list[str]:
    """Event ids whose final score matches at least one subscription."""
    return sorted(
        event_id for event_id, r in records.items()
        if any(s.matches(r["camera_id"], r["event_type"], r["score"]) for s in cfg.subscriptions)
    )


def run_reference(cfg: Config, workdir: Path, *receiver_args: str, analyzers: int = 1) -> dict[str, int]:
    """An undisturbed run: analyzers and alerter up, receiver to completion, drain, SIGTERM."""
    with PipelineProcesses(cfg, workdir) as procs:
        procs.start("alerter")
        for _ in range(analyzers):
            procs.start("analyzer")
        receiver = procs.run("receiver", *receiver_args, timeout=300)
        assert receiver.process.returncode == 0, receiver.output()
        assert procs.wait_drained(timeout=240), "pipeline did not drain"
        codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    return codes


def topic_values(cfg: Config, topic: str) -> list[dict[str, Any]]:
    """Every JSON value of a topic."""
    return [json.loads(r.value) for r in read_recent(cfg, topic)]
