"""The one error policy: what is bad content (dead-letter it, go on) and what is a broken environment (stop).

Every consuming stage and every replay goes through RecordProcessor, so one rule decides everywhere:

- decoding a record (parsing it, reading the files it names): an OSError of the environment (disk
  failing, permission, too many open files) stops the stage; any other failure is the content's fault;
- the step: any exception is the content's fault, because a step does no I/O; the record is
  dead-lettered with the exception text and only the state that record touches is reset;
- performing the outputs (writes, sends, flush) is the runner's job; a failure there stops the stage
  without committing, so a restart redoes the work (see runner.py).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from image_pipeline.errors import FatalError
from image_pipeline.messages import DeadLetter, b64
from image_pipeline.stages.step import Outputs, Source, StageSpec

logger = logging.getLogger(__name__)
T = TypeVar("T")

# OSErrors that say the machine is in trouble, not the record: stop, so that nothing is committed.
ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
    errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ESTALE,
})
# A dead letter keeps at most this many bytes of the original value (a 1 MB producer request
# must hold the base64 of it, a third larger, plus the envelope); beyond it, a prefix plus length and hash.
DEAD_LETTER_MAX_VALUE = 256 * 1024
ERROR_TEXT_MAX = 2000


def is_environment_error(exc: BaseException) -> bool:
    """Whether an exception from reading or writing files means the environment is broken."""
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS


def describe_error(exc: BaseException) -> str:
    """One bounded line: the exception type and text, and where in our code it was raised."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].name}:{frames[-1].lineno})" if frames else ""
    line = f"{text}{where}"
    return line if len(line) <= ERROR_TEXT_MAX else line[: ERROR_TEXT_MAX - 3] + "..."


def dead_letter_for(record: Any, exc: BaseException, client: str) -> DeadLetter:
    """A dead letter keeping the original bytes, or a prefix plus length and SHA-256 when they are too big."""
    value: bytes = record.value or b""
    truncated = len(value) > DEAD_LETTER_MAX_VALUE
    key: bytes | None = record.key
    return DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=b64(key[:1024] if key is not None else None),
        value_b64=b64(value[:DEAD_LETTER_MAX_VALUE]) or "",
        error=describe_error(exc),
        error_type=type(exc).__name__,
        client=client,
        value_length=len(value),
        value_sha256=hashlib.sha256(value).hexdigest() if truncated else None,
        truncated=truncated,
    )


@dataclass
class Processed:
    """What one record led to: outputs to perform, or the reason it was refused."""

    outputs: Outputs = field(default_factory=Outputs)
    error: BaseException | None = None
    replayed: int = 0


class RecordProcessor(Generic[T]):
    """Decode, replay history when the step asks for it, apply the step: all under the one policy."""

    def __init__(self, spec: StageSpec[T]) -> None:
        self.spec = spec
        self.step = spec.step

    def process(self, record: Any) -> Processed:
        """Handle one Kafka record (anything with topic, partition, offset, key and value)."""
        source = Source(record.topic, record.partition, record.offset)
        try:
            item = self._decode(lambda: self.spec.decode(record.value), source)
        except _ContentError as bad:
            return Processed(error=bad.cause)
        result = Processed()
        if self.step.needs_replay(item):
            result.replayed = self._replay(item, source)
        try:
            result.outputs = self.step.apply(item, source)
        except Exception as exc:
            result.error = exc
            result.outputs = self._reset(item, source)
        return result

    def _decode(self, load: Callable[[], T], source: Source) -> T:
        try:
            return load()
        except Exception as exc:
            if is_environment_error(exc):
                where = f"topic={source.topic} partition={source.partition} offset={source.offset}"
                raise FatalError(f"cannot read the input of a record ({where}): {exc}") from exc
            raise _ContentError(exc) from exc

    def _reset(self, item: T, source: Source) -> Outputs:
        try:
            return self.step.reset(item)
        except Exception as exc:
            logger.warning("reset after a bad record also failed (%s) topic=%s partition=%s offset=%s",
                           describe_error(exc), source.topic, source.partition, source.offset)
            return Outputs()

    def _replay(self, item: T, source: Source) -> int:
        """Rebuild state from history through the same decode, step and reset; outputs are dropped.

        They were performed when those records were first processed; replaying must only rebuild state.
        """
        self.step.start_replay(item, source)
        if self.spec.history is None:
            return 0
        count = 0
        for load in self.spec.history(item):
            try:
                stored = self._decode(load, source)
            except _ContentError:
                continue  # it was refused the first time too, so skipping it repeats that run
            try:
                self.step.apply(stored, None)
            except Exception:
                self._reset(stored, source)
            count += 1
        return count


class _ContentError(Exception):
    """Internal: decoding failed because of the record's content."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
