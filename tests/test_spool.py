"""Prerendered captures come back from the spool file whole and in order."""

from __future__ import annotations

from image_pipeline.stages.publishing import Capture
from image_pipeline.stages.spool import spool


def test_spooled_captures_come_back_in_order_and_whole() -> None:
    drawn: list[int] = []

    def captures() -> list[Capture]:
        out = []
        for seq in range(50):
            drawn.append(seq)
            out.append(Capture("cam-01", seq, bytes([seq]) * (1000 + seq), 64, 48, "jpg", [{"seq": seq}], 1000.0 + seq))
        return out

    source = captures()
    back = spool(iter(source))
    assert drawn == list(range(50)), "every frame is drawn before the first is sent"
    assert list(back) == source
