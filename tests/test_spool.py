"""Prerendered captures come back from the spool file whole and in order, all drawn before the first is sent."""

from __future__ import annotations

from collections.abc import Iterator

from image_pipeline.stages.publishing import Capture
from image_pipeline.stages.spool import spool


def capture(seq: int) -> Capture:
    return Capture("cam-01", seq, bytes([seq]) * (1000 + seq), 64, 48, "jpg", [{"seq": seq}], 1000.0 + seq)


def test_spooled_captures_come_back_in_order_and_whole() -> None:
    drawn: list[int] = []

    def draw() -> Iterator[Capture]:
        for seq in range(50):
            drawn.append(seq)
            yield capture(seq)

    back = spool(draw())
    assert drawn == list(range(50)), "every frame is drawn before the first is sent"
    assert list(back) == [capture(seq) for seq in range(50)]


def test_prerendered_frames_are_the_live_frames_in_the_same_order() -> None:
    from image_pipeline.config import PROJECT_ROOT
    from image_pipeline.sim.synthesis import load_backgrounds
    from image_pipeline.stages.receiving import prerendered, synthesized

    backgrounds = load_backgrounds(PROJECT_ROOT / "image_original")
    live = list(synthesized(3, 6, 5, (96, 72), backgrounds, 90))
    drawn = list(prerendered(3, 6, 5, (96, 72), backgrounds, 90))
    def key(c: Capture) -> tuple[object, ...]:
        return c.camera_id, c.seq, c.data, c.truth

    assert [key(c) for c in drawn] == [key(c) for c in live]
