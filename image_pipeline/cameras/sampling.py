"""Which frames to keep, when to emit them, and how long to wait before reconnecting: pure arithmetic."""

from __future__ import annotations

from image_pipeline.cameras.settings import BACKOFF_CAP_S

TOLERANCE_S = 0.001  # stream positions like 5/25 s add up with float error; a millisecond absorbs it


class Sampler:
    """Keeps a frame every 1/fps seconds of frame time (file position or wall clock at grab); fps 0 keeps all."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self.next_due: float | None = None

    def keep(self, t: float) -> bool:
        """Whether the frame at time t is kept."""
        if self.period == 0.0:
            return True
        if self.next_due is not None and t < self.next_due - TOLERANCE_S:
            return False
        due = t if self.next_due is None else self.next_due
        # After a stall (a reconnect, a slow read) start afresh rather than keep a burst of frames.
        self.next_due = due + self.period if due + self.period > t else t + self.period
        return True

    def restart(self) -> None:
        """Forget the schedule: the next frame is kept (a new connection, a new file pass)."""
        self.next_due = None


def backoff_s(attempt: int, cap_s: float = BACKOFF_CAP_S) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based): 1, 2, 4, ... capped at cap_s."""
    return float(min(cap_s, 2.0 ** min(attempt, 30)))
