"""Episodes: one event per happening, bridged gaps, deterministic records."""

from __future__ import annotations

import json

from image_pipeline.vision.detection import Detection
from image_pipeline.vision.episodes import EpisodeParams, EpisodeTracker, EpisodeUpdate

BOX = ((10, 20, 30, 40),)


def feed(tracker: EpisodeTracker, pattern: list[list[Detection]], first_seq: int = 0) -> list[EpisodeUpdate]:
    out: list[EpisodeUpdate] = []
    for i, dets in enumerate(pattern):
        seq = first_seq + i
        out.extend(tracker.observe(f"cam-01-{seq:08d}", seq, 100.0 + seq / 10, dets))
    return out


def intr(score: float = 0.8) -> list[Detection]:
    return [Detection("intrusion", score, BOX)]


def test_one_crossing_gives_one_event_with_start_updates_end() -> None:
    tracker = EpisodeTracker("cam-01", EpisodeParams(update_every=10))
    updates = feed(tracker, [[]] * 3 + [intr()] * 35 + [[]] * 6)
    phases = [u.phase for u in updates]
    assert phases == ["start", "update", "update", "update", "end"]
    assert {u.episode.event_id for u in updates} == {"cam-01-intrusion-000003"}
    end = updates[-1].episode
    assert end.status == "closed" and len(end.frames) == 35
    assert end.previous_image_id == "cam-01-00000002"


def test_short_gaps_do_not_split_an_episode() -> None:
    tracker = EpisodeTracker("cam-01")
    pattern = [intr(), intr(), [], intr(), [], [], intr(), intr()] + [[]] * 6
    updates = feed(tracker, pattern)
    assert [u.phase for u in updates] == ["start", "end"]
    assert [f.seq for f in updates[-1].episode.frames] == [0, 1, 3, 6, 7]


def test_single_frame_intrusion_does_not_start_but_two_frames_do() -> None:
    tracker = EpisodeTracker("cam-01")
    assert feed(tracker, [intr(), [], [], [], intr(), [], [], []]) == []
    started = feed(tracker, [intr(), intr()], first_seq=8)
    assert [u.phase for u in started] == ["start"]
    assert [f.seq for f in started[0].episode.frames] == [8, 9]


def test_long_silence_splits_into_two_events() -> None:
    tracker = EpisodeTracker("cam-01")
    updates = feed(tracker, [intr()] * 4 + [[]] * 8 + [intr()] * 4 + [[]] * 8)
    assert [u.phase for u in updates] == ["start", "end", "start", "end"]


def test_key_frame_is_highest_score_earliest_on_ties() -> None:
    tracker = EpisodeTracker("cam-01")
    updates = feed(tracker, [intr(0.5), intr(0.9), intr(0.7), intr(0.9)] + [[]] * 5)
    ep = updates[-1].episode
    assert ep.key_index == 1 and ep.score == 0.9
    assert ep.to_record()["key_image_id"] == "cam-01-00000001"


def test_types_are_tracked_independently_and_single_frame_types_start_at_once() -> None:
    tracker = EpisodeTracker("cam-01")
    updates = feed(tracker, [[Detection("lighting_change", 0.6)], [Detection("tamper", 0.9)]] + [[]] * 4)
    assert [(u.phase, u.episode.event_type) for u in updates] == [
        ("start", "lighting_change"), ("start", "tamper"), ("end", "lighting_change"), ("end", "tamper")]


def test_snapshots_do_not_change_when_the_episode_grows() -> None:
    tracker = EpisodeTracker("cam-01")
    start = feed(tracker, [intr(), intr()])[0]
    feed(tracker, [intr()] * 5, first_seq=2)
    assert len(start.episode.frames) == 2


def test_same_frames_give_byte_identical_records() -> None:
    pattern: list[list[Detection]] = (
        [[]] * 2 + [intr(0.6)] * 12 + [[]] * 6 + [[Detection("scene_change", 0.7)]] * 3 + [[]] * 4
    )

    def records() -> list[str]:
        tracker = EpisodeTracker("cam-01")
        ups = feed(tracker, pattern) + tracker.finish()
        return [json.dumps(u.episode.to_record(), sort_keys=True) for u in ups]

    first = records()
    assert first == records()
    rec = json.loads(first[-1])
    assert set(rec) >= {"event_id", "event_type", "camera_id", "status", "score", "first_image_id",
                        "last_image_id", "first_seq", "last_seq", "key_image_id", "previous_image_id",
                        "frame_count", "started_at", "ended_at", "frames"}


def test_finish_closes_open_episodes() -> None:
    tracker = EpisodeTracker("cam-01")
    feed(tracker, [[Detection("scene_change", 0.7)]] * 2)
    ends = tracker.finish()
    assert [(u.phase, u.episode.status) for u in ends] == [("end", "closed")]
