"""What a consuming stage is: a pure step from a decoded record to the files to write and messages to send.

A step does no Kafka I/O and no disk I/O of its own. The stage runner (kafka/runner.py) decodes each
record, calls the step under one error policy (kafka/policy.py), then performs the outputs: atomic
writes, sends, flush, and only then commit. That split keeps every step testable in process, and
keeps every decision about bad input in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True)
class Source:
    """Where a record came from: for partition-aware state and for log lines."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class FileWrite:
    """One file to write atomically; the path is already inside a data folder (built with safe_join)."""

    path: Path
    data: bytes


@dataclass(frozen=True)
class Send:
    """One message to publish."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass
class Outputs:
    """The files and messages one step produced, performed in this order: writes, then sends."""

    writes: list[FileWrite] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)

    def add(self, other: Outputs) -> Outputs:
        """Append another step's outputs; returns self."""
        self.writes.extend(other.writes)
        self.sends.extend(other.sends)
        return self

    def __bool__(self) -> bool:
        return bool(self.writes or self.sends)


class Step(Protocol[T_contra]):
    """A stage's logic over decoded records; see StepBase for the optional parts."""

    def apply(self, item: T_contra, source: Source | None) -> Outputs:
        """Process one decoded record (source is None while replaying history)."""

    def reset(self, item: T_contra) -> Outputs:
        """apply() raised on this item: reset only the state it touches; may close what was open."""

    def needs_replay(self, item: T_contra) -> bool:
        """Whether history must be replayed through apply() before this item (state missing or stale)."""

    def start_replay(self, item: T_contra, source: Source) -> None:
        """Fresh state for this item's key, about to be rebuilt from history."""

    def idle(self, partition: int, idle_s: float) -> Outputs:
        """The partition has been verified caught up (no record to read) for idle_s seconds."""

    def wants_idle_ticks(self) -> bool:
        """Whether idle() has anything to do now; spares the runner its end-offset checks otherwise."""

    def revoke(self, partitions: set[int]) -> None:
        """Forget per-partition state: another instance owns these partitions now."""


class StepBase(Generic[T]):
    """Defaults for steps without history, idle work or per-partition state."""

    def reset(self, item: T) -> Outputs:
        """Nothing to reset."""
        return Outputs()

    def needs_replay(self, item: T) -> bool:
        """No history to replay."""
        return False

    def start_replay(self, item: T, source: Source) -> None:
        """No history to replay."""

    def idle(self, partition: int, idle_s: float) -> Outputs:
        """Nothing to do when idle."""
        return Outputs()

    def wants_idle_ticks(self) -> bool:
        """No idle work."""
        return False

    def revoke(self, partitions: set[int]) -> None:
        """No per-partition state."""


@dataclass(frozen=True)
class StageSpec(Generic[T]):
    """Everything the runner needs to know about one consuming stage."""

    client_id: str
    group: str
    topic: str
    decode: Callable[[bytes | None], T]  # content errors raise; may read the files a message names
    step: Step[T]
    # What to replay before an item that needs it: one loader per stored item, decoded under the same policy.
    history: Callable[[T], Iterator[Callable[[], T]]] | None = None
