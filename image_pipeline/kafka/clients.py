"""Kafka I/O: producer and consumer factories, topic admin, and the one consumer loop."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kafka import AsyncConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from image_pipeline.config import Config, TopicConfig
from image_pipeline.errors import BadInputError, FatalError
from image_pipeline.messages import DeadLetter, b64

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- factories


def make_producer(cfg: Config, client_id: str, **overrides: Any) -> KafkaProducer:
    """An idempotent, acks=all producer with deliberate timeouts and light batching."""
    settings: dict[str, Any] = {
        "bootstrap_servers": cfg.kafka.bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        # A send that has not reached Kafka within this time fails for good.
        "delivery_timeout_ms": cfg.kafka.delivery_timeout_ms,
        "request_timeout_ms": cfg.kafka.request_timeout_ms,
        # Batch for a few ms instead of one request per message; latency stays low.
        "linger_ms": 5,
        "batch_size": 64 * 1024,
        "retry_backoff_ms": 200,
        "reconnect_backoff_max_ms": 2000,
        "bootstrap_timeout_ms": cfg.kafka.request_timeout_ms,
    }
    settings.update(overrides)
    return KafkaProducer(**settings)


def close_producer(producer: KafkaProducer, timeout_s: float = 10.0) -> bool:
    """Flush and close; if Kafka is unreachable, drop what is unsent. Returns whether all was sent."""
    try:
        producer.close(timeout=timeout_s)
        return True
    except KafkaError:
        # kafka-python's close() flushes first and, when the flush times out, raises before it
        # stops its sender thread; stop it here so no half-closed producer is left behind.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        producer._closed = True
        return False


def make_consumer(cfg: Config, group_id: str | None, client_id: str, **overrides: Any) -> KafkaConsumer:
    """A consumer with auto-commit off that starts at the earliest offset of a new group."""
    settings: dict[str, Any] = {
        "bootstrap_servers": cfg.kafka.bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": cfg.kafka.max_poll_interval_ms,
        "session_timeout_ms": cfg.kafka.session_timeout_ms,
        "heartbeat_interval_ms": max(1000, cfg.kafka.session_timeout_ms // 4),
        "request_timeout_ms": max(cfg.kafka.request_timeout_ms, cfg.kafka.session_timeout_ms + 5000),
        # Small batches keep one poll's work far below max.poll.interval.ms;
        # a short fetch wait keeps latency low when traffic is light.
        "max_poll_records": 50,
        "fetch_max_wait_ms": 100,
        "allow_auto_create_topics": False,
        "bootstrap_timeout_ms": cfg.kafka.request_timeout_ms,
    }
    settings.update(overrides)
    return KafkaConsumer(**settings)


def make_admin(cfg: Config) -> KafkaAdminClient:
    """An admin client for topic management."""
    return KafkaAdminClient(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        client_id="image-pipeline-admin",
        request_timeout_ms=cfg.kafka.request_timeout_ms,
        bootstrap_timeout_ms=cfg.kafka.request_timeout_ms,
    )


def ensure_topics(cfg: Config, topics: Iterable[TopicConfig] | None = None) -> list[str]:
    """Create the configured topics that do not exist yet; returns the names created."""
    wanted = list(topics) if topics is not None else cfg.topics.all()
    admin = make_admin(cfg)
    try:
        existing = set(admin.list_topics())
        missing = {t.name: t for t in wanted if t.name not in existing}
        if not missing:
            return []
        spec = {name: {"num_partitions": t.partitions, "replication_factor": 1} for name, t in missing.items()}
        # Another client may create one between our look and our create.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(spec, wait_for_metadata=True)
        return sorted(missing)
    finally:
        admin.close()


# ---------------------------------------------------------------- the consumer loop


class RecordHandler(Protocol):
    """What a stage plugs into the loop."""

    def handle(self, record: Any) -> None:
        """Process one record and write its outputs; raise BadInputError for unusable input."""

    def flush(self) -> None:
        """Make every output of the records handled so far durable (e.g. flush the producer)."""

    def partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        """Forget per-partition state: another instance may own these partitions now."""


@dataclass
class LoopOptions:
    """Bounds and pacing of a consumer loop."""

    until_idle: float | None = None  # stop after this many seconds without a message
    max_messages: int | None = None  # stop after this many messages
    poll_timeout_ms: int = 1000
    progress_every_s: float = 5.0


@dataclass
class LoopStats:
    """What the loop did, for progress lines and tests."""

    processed: int = 0
    dead_lettered: int = 0
    commits: int = 0
    started: float = field(default_factory=time.monotonic)


class _Listener(AsyncConsumerRebalanceListener):
    """Commits durable offsets of revoked partitions and tells the main thread about them."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        offsets = self.loop.take_durable(set(revoked))
        if offsets:
            try:
                await self.loop.consumer.commit_async(offsets)
                logger.info("committed on revoke: %s", _fmt_offsets(offsets))
            except KafkaError as exc:
                logger.warning("commit on revoke failed (%s); records will be redelivered", exc)
        self.loop.note_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            logger.info("assigned partitions: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    async def on_partitions_lost(self, lost: Any) -> None:
        self.loop.take_durable(set(lost))
        self.loop.note_revoked(list(lost))


def _fmt_offsets(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in offsets.items())


class ConsumerLoop:
    """Poll, handle, flush, commit; dead-letter bad input; stop cleanly on a flag.

    Offsets are committed only after handler.flush() returned, so every committed record's
    outputs are on disk and its follow-up messages are acknowledged by Kafka.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        topics: list[str],
        handler: RecordHandler,
        dlq: DeadLetterPublisher,
        stop: threading.Event,
        options: LoopOptions | None = None,
        progress: Callable[[LoopStats], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.dlq = dlq
        self.stop = stop
        self.options = options or LoopOptions()
        self.progress = progress
        self.stats = LoopStats()
        self._lock = threading.Lock()
        self._durable: dict[TopicPartition, OffsetAndMetadata] = {}
        self._revoked: list[TopicPartition] = []
        consumer.subscribe(topics, listener=_Listener(self))

    def take_durable(self, partitions: set[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Remove and return uncommitted durable offsets of these partitions."""
        with self._lock:
            taken = {tp: om for tp, om in self._durable.items() if tp in partitions}
            for tp in taken:
                del self._durable[tp]
            return taken

    def note_revoked(self, partitions: list[TopicPartition]) -> None:
        """Remember revoked partitions; the main thread drops their state before the next record."""
        with self._lock:
            self._revoked.extend(partitions)

    def run(self) -> LoopStats:
        """Run until stopped, idle or at max_messages; commits what is durable before returning."""
        last_message = time.monotonic()
        last_progress = time.monotonic()
        try:
            while not self.stop.is_set() and not self._reached_max():
                batch = self.consumer.poll(timeout_ms=self.options.poll_timeout_ms)
                self._apply_revocations()
                if not batch:
                    idle = self.options.until_idle
                    if idle is not None and time.monotonic() - last_message >= idle:
                        logger.info("no message for %.0f s; stopping (--until-idle)", idle)
                        break
                    continue
                last_message = time.monotonic()
                self._process(batch)
                self._commit()
                if self.progress and time.monotonic() - last_progress >= self.options.progress_every_s:
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
            self.handler.partitions_revoked(revoked)

    def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        done: dict[TopicPartition, int] = {}
        try:
            for tp, records in batch.items():
                for record in records:
                    if self.stop.is_set() or self._reached_max():
                        return
                    self._handle_one(record)
                    done[tp] = record.offset + 1
                    self.stats.processed += 1
        finally:
            # Whatever was handled is made durable before its offset may be committed.
            if done:
                self.handler.flush()
                self.dlq.flush()
                with self._lock:
                    for tp, offset in done.items():
                        self._durable[tp] = OffsetAndMetadata(offset, "", -1)

    def _handle_one(self, record: Any) -> None:
        try:
            self.handler.handle(record)
        except BadInputError as exc:
            self.stats.dead_lettered += 1
            self.dlq.publish(record, exc)
        except OSError as exc:
            # Disk full, read-only folder...: stop before this record's offset is committed.
            where = f"topic={record.topic} partition={record.partition} offset={record.offset}"
            raise FatalError(f"cannot write outputs ({where}): {exc}") from exc

    def _commit(self) -> None:
        with self._lock:
            offsets, self._durable = self._durable, {}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
            self.stats.commits += 1
        except CommitFailedError as exc:
            # The group rebalanced under us; the new owner will redo these records, and
            # our outputs are idempotent, so redoing them is harmless.
            logger.warning("commit failed after a rebalance (%s); records will be redelivered", exc)

    def commit_and_close(self) -> None:
        """Commit what is durable, then leave the group."""
        try:
            self._commit()
        finally:
            self.consumer.close(autocommit=False)

    def close_without_commit(self) -> None:
        """Leave the group at once without committing (after a fatal error)."""
        self.consumer.close(autocommit=False)


# ---------------------------------------------------------------- dead letters


class DeadLetterPublisher:
    """Sends unprocessable records, whole, to the dead-letter topic."""

    def __init__(self, producer: KafkaProducer, topic: str, client: str) -> None:
        self.producer = producer
        self.topic = topic
        self.client = client

    def publish(self, record: Any, exc: BaseException) -> None:
        """Send one record with the reason it failed; log one line."""
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key_b64=b64(record.key),
            value_b64=b64(record.value or b"") or "",
            error=str(exc),
            error_type=type(exc).__name__,
            client=self.client,
        )
        self.producer.send(self.topic, key=record.key, value=letter.encode())
        logger.warning(
            "dead-lettered topic=%s partition=%s offset=%s error=%s",
            record.topic, record.partition, record.offset, exc,
        )

    def flush(self) -> None:
        """Wait until every dead letter is acknowledged."""
        self.producer.flush()


# ---------------------------------------------------------------- one consuming stage, wired

H = TypeVar("H", bound=RecordHandler)


def run_consumer_stage(
    cfg: Config,
    client_id: str,
    group: str,
    topic: str,
    make_handler: Callable[[KafkaProducer], H],
    stop: threading.Event,
    options: LoopOptions,
    progress: Callable[[H, LoopStats], None],
) -> LoopStats:
    """Wire producer, handler, consumer and dead letters; run the loop; close in reverse order.

    On a fatal error the consumer leaves without committing, so a restart redoes the work.
    """
    producer = make_producer(cfg, client_id)
    try:
        handler = make_handler(producer)
        consumer = make_consumer(cfg, group, client_id)
        dlq = DeadLetterPublisher(producer, cfg.topics.dead_letter.name, client_id)
        loop = ConsumerLoop(consumer, [topic], handler, dlq, stop, options, lambda s: progress(handler, s))
        try:
            loop.run()
        except BaseException:
            loop.close_without_commit()
            raise
        loop.commit_and_close()
    finally:
        close_producer(producer)
    progress(handler, loop.stats)
    return loop.stats
