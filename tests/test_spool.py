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
