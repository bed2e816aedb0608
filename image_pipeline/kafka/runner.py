"""The stage runner: the one loop every consuming stage runs in.

Poll, process each record through the policy (policy.py), perform the outputs (atomic writes, then
sends), dead-letter refused records, flush, and commit only what is durable. It also commits on
partition revoke and once more on shutdown, gives the step idle ticks, and stops on a flag that the
SIGTERM handler sets. Nothing here knows what a stage does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata, TopicPartition

from image_pipeline.config import Config
from image_pipeline.errors import FatalError
from image_pipeline.kafka.clients import close_producer, make_consumer, make_producer
from image_pipeline.kafka.policy import RecordProcessor, dead_letter_for, describe_error, is_environment_error
from image_pipeline.stages.step import Outputs, StageSpec
from image_pipeline.storage import atomic_write_bytes, remove_abandoned_temp_files

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RunOptions:
    """Bounds and pacing of a stage run."""

    until_idle: float | None = None  # stop after this many seconds without a message
    max_messages: int | None = None  # stop after this many messages
    poll_timeout_ms: int = 1000
    progress_every_s: float = 5.0
    idle_check_every_s: float = 1.0
    # A side consumer (the analyzer's camera monitor) logs its assignments at DEBUG, so the INFO line
    # "assigned partitions" keeps meaning the stage's own topic to whoever waits for it (bench, tests).
    log_assignments: bool = True


@dataclass
class RunStats:
    """What the runner did, for progress lines and tests."""

    processed: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    commits: int = 0
    started: float = field(default_factory=time.monotonic)


class _Listener(AsyncConsumerRebalanceListener):
    """Commits durable offsets of revoked partitions and tells the main thread about them."""

    def __init__(self, runner: StageRunner[Any]) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        offsets = self.runner.take_durable(set(revoked))
        if offsets:
            try:
                await self.runner.consumer.commit_async(offsets)
                logger.info("committed on revoke: %s", _fmt_offsets(offsets))
            except KafkaError as exc:
                logger.warning("commit on revoke failed (%s); records will be redelivered", exc)
        self.runner.note_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            level = logging.INFO if self.runner.options.log_assignments else logging.DEBUG
            logger.log(level, "assigned partitions: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    async def on_partitions_lost(self, lost: Any) -> None:
        self.runner.take_durable(set(lost))
        self.runner.note_revoked(list(lost))


def _fmt_offsets(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in offsets.items())


class StageRunner(Generic[T]):
    """Runs one stage's step over its topic with the one error policy; commits only durable work."""

    def __init__(self, cfg: Config, spec: StageSpec[T], consumer: KafkaConsumer, producer: KafkaProducer,
                 stop: threading.Event, options: RunOptions | None = None) -> None:
        self.cfg = cfg
        self.spec = spec
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.options = options or RunOptions()
        self.stats = RunStats()
        self.processor = RecordProcessor(spec)
        self.progress: Callable[[RunStats], None] = lambda _stats: None
        self._lock = threading.Lock()
        self._durable: dict[TopicPartition, OffsetAndMetadata] = {}
        self._revoked: list[TopicPartition] = []
        self._pending: list[Any] = []  # send futures since the last flush
        self._caught_up_since: dict[int, float] = {}
        self._last_idle_check = 0.0
        consumer.subscribe([spec.topic], listener=_Listener(self))

    # -- called from the rebalance listener (the poll thread, inside poll())

    def take_durable(self, partitions: set[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Remove and return uncommitted durable offsets of these partitions."""
        with self._lock:
            taken = {tp: om for tp, om in self._durable.items() if tp in partitions}
            for tp in taken:
                del self._durable[tp]
            return taken

    def note_revoked(self, partitions: list[TopicPartition]) -> None:
        """Remember revoked partitions; their state is dropped before the next record."""
        with self._lock:
            self._revoked.extend(partitions)

    # -- the loop

    def run(self) -> RunStats:
        """Run until stopped, idle or at max_messages; commits what is durable before returning."""
        last_message = last_progress = time.monotonic()
        try:
            while not self.stop.is_set() and not self._reached_max():
                batch = self.consumer.poll(timeout_ms=self.options.poll_timeout_ms)
                self._apply_revocations()
                if not batch:
                    idle = self.options.until_idle
                    if idle is not None and time.monotonic() - last_message >= idle:
                        logger.info("no message for %.0f s; stopping (--until-idle)", idle)
                        break
                    self._idle_tick()
                    continue
                last_message = time.monotonic()
                self._process_batch(batch)
                self._commit()
                if time.monotonic() - last_progress >= self.options.progress_every_s:
                    self.progress(self.stats)
                    last_progress = time.monotonic()
        finally:
            self._apply_revocations()
        return self.stats

    def _reached_max(self) -> bool:
        limit = self.options.max_messages
        return limit is not None and self.stats.processed >= limit

    def _apply_revocations(self) -> None:
        with self._lock:
            revoked, self._revoked = self._revoked, []
        if revoked:
            gone = {tp.partition for tp in revoked if tp.topic == self.spec.topic}
            self.spec.step.revoke(gone)
            for partition in gone:
                self._caught_up_since.pop(partition, None)

    def _process_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        done: dict[TopicPartition, int] = {}
        try:
            for tp, records in batch.items():
                self._caught_up_since.pop(tp.partition, None)
                for record in records:
                    if self.stop.is_set() or self._reached_max():
                        return
                    self._handle(record)
                    done[tp] = record.offset + 1
                    self.stats.processed += 1
        finally:
            # Whatever was handled is made durable before its offset may be committed.
            if done:
                self._flush()
                with self._lock:
                    for tp, offset in done.items():
                        self._durable[tp] = OffsetAndMetadata(offset, "", -1)

    def _handle(self, record: Any) -> None:
        result = self.processor.process(record)
        self.stats.replayed += result.replayed
        error = result.error
        if error is None or result.outputs:
            try:
                self.perform(result.outputs)
            except _ContentOutputError as exc:
                error = error or exc.cause
        if error is not None:
            self._dead_letter(record, error)

    def perform(self, outputs: Outputs) -> None:
        """Write every file atomically, then send every message; environment failures stop the stage."""
        for write in outputs.writes:
            try:
                atomic_write_bytes(write.path, write.data)
            except OSError as exc:
                if is_environment_error(exc):
                    raise FatalError(f"cannot write outputs ({write.path}): {exc}") from exc
                raise _ContentOutputError(exc) from exc  # e.g. a name too long: the content's fault
        for send in outputs.sends:
            self._send(send.topic, send.key, send.value)

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        try:
            self._pending.append(self.producer.send(topic, key=key, value=value))
        except MessageSizeTooLargeError as exc:
            raise _ContentOutputError(exc) from exc
        except KafkaError as exc:
            raise FatalError(f"cannot send to {topic}: {exc}") from exc

    def _dead_letter(self, record: Any, error: BaseException) -> None:
        letter = dead_letter_for(record, error, self.spec.client_id)
        self.stats.dead_lettered += 1
        logger.warning("dead-lettered topic=%s partition=%s offset=%s error=%s: %s", record.topic,
                       record.partition, record.offset, letter.error_type, letter.error)
        try:
            self._send(self.cfg.topics.dead_letter.name, record.key, letter.encode())
        except _ContentOutputError as exc:
            raise FatalError(f"cannot dead-letter offset {record.offset}: {exc.cause}") from exc

    def _flush(self) -> None:
        """Wait until every send is acknowledged; one that failed for good stops the stage before commit."""
        try:
            self.producer.flush(timeout=self.cfg.kafka.delivery_timeout_ms / 1000 + 5)
        except KafkaError as exc:
            raise FatalError(f"Kafka did not acknowledge our messages: {exc}") from exc
        pending, self._pending = self._pending, []
        failed = [f for f in pending if f.failed()]
        if failed:
            raise FatalError(f"{len(failed)} message(s) never reached Kafka: {failed[0].exception}")

    def _commit(self) -> None:
        with self._lock:
            offsets, self._durable = self._durable, {}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
            self.stats.commits += 1
        except CommitFailedError as exc:
            # The group rebalanced under us; the new owner redoes these records, and outputs are idempotent.
            logger.warning("commit failed after a rebalance (%s); records will be redelivered", exc)

    # -- idle ticks

    def _idle_tick(self) -> None:
        """Give the step the time each partition has been verified caught up, so it can close idle work.

        Verified means the broker answered and our position is its end offset: while Kafka is away,
        an empty poll proves nothing, and closing episodes then would differ from an undisturbed run.
        """
        now = time.monotonic()
        if not self.spec.step.wants_idle_ticks() or now - self._last_idle_check < self.options.idle_check_every_s:
            return
        self._last_idle_check = now
        caught_up = self._caught_up_partitions()
        for partition in list(self._caught_up_since):
            if partition not in caught_up:
                del self._caught_up_since[partition]
        outputs = Outputs()
        for partition in sorted(caught_up):
            since = self._caught_up_since.setdefault(partition, now)
            outputs.add(self.spec.step.idle(partition, now - since))
        if outputs:
            self.perform(outputs)
            self._flush()

    def _caught_up_partitions(self) -> set[int]:
        assigned = [tp for tp in self.consumer.assignment() if tp.topic == self.spec.topic]
        if not assigned:
            return set()
        try:
            ends = self.consumer.end_offsets(assigned, timeout_ms=2000)
            return {tp.partition for tp in assigned if self.consumer.position(tp, timeout_ms=2000) >= ends[tp]}
        except (KafkaError, KeyError) as exc:
            # kafka-python's end_offsets raises KeyError for a partition without a leader (a broker of
            # a cluster just died): as unverified as a timeout.
            logger.debug("end offsets unavailable (%r); no idle tick", exc)
            return set()

    # -- shutdown

    def commit_and_close(self) -> None:
        """Commit what is durable, then leave the group."""
        try:
            self._commit()
        finally:
            self.consumer.close(autocommit=False)

    def close_without_commit(self) -> None:
        """Leave the group at once without committing (after a fatal error)."""
        self.consumer.close(autocommit=False)


class _ContentOutputError(Exception):
    """Internal: performing an output failed because of what the record made us write or send."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe_error(cause))
        self.cause = cause


def run_stage(cfg: Config, spec: StageSpec[T], stop: threading.Event, options: RunOptions,
              progress: Callable[[RunStats], None]) -> RunStats:
    """Wire producer and consumer around a stage, run it, close in reverse order.

    On a fatal error the consumer leaves without committing, so a restart redoes the work.
    """
    removed = remove_abandoned_temp_files(cfg.images_dir, cfg.events_dir, cfg.alerts_dir)
    if removed:
        logger.info("removed %d temp file(s) left by a process that died mid-write", removed)
    producer = make_producer(cfg, spec.client_id)
    try:
        consumer = make_consumer(cfg, spec.group, spec.client_id)
        runner = StageRunner(cfg, spec, consumer, producer, stop, options)
        runner.progress = progress
        try:
            runner.run()
        except BaseException as exc:
            if isinstance(exc, FatalError):
                logger.error("stopping without committing past the last durable output; a restart redoes the rest")
            runner.close_without_commit()
            raise
        runner.commit_and_close()
    finally:
        close_producer(producer)
    progress(runner.stats)
    return runner.stats
