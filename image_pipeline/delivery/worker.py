"""The delivery worker (image_alert_delivery.py): reads the deliveries topic and hands each delivery to its lane.

At least once, and why a kill -9 loses nothing: an offset is committed only when its delivery is
finished durably: delivered (status file written after the receiver's 2xx), failed (dead letter
acknowledged by Kafka, then the status file written), or skipped because its status file already
says delivered or failed. Deliveries finish out of order (lanes are independent), so each partition is
committed up to its first unfinished offset. After a crash the uncommitted deliveries are read again;
those already finished are skipped by their status file, the rest resume with the attempt count and
first-attempt time from it, so the N-attempts-or-T-minutes bound holds across restarts. The only
repeat a receiver can see is an attempt that succeeded just before the crash, before its status file
was written: the idempotency key lets it drop that one.

The loop is bounded: each poll waits at most 200 ms, reading pauses while `delivery.max_in_flight`
deliveries are unfinished, and a stop flag (SIGTERM) ends it after the current round.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from image_pipeline import cli
from image_pipeline.config import Config
from image_pipeline.delivery.channels import DeliveryFailure
from image_pipeline.delivery.lanes import Destination, Job, Lane, OffsetTracker, Outcome, destinations, make_sender
from image_pipeline.delivery.settings import secret, secrets_path
from image_pipeline.delivery.status import TERMINAL, read_status, status_path, status_record
from image_pipeline.errors import FatalError
from image_pipeline.kafka.clients import close_producer, ensure_topics, make_consumer, make_producer
from image_pipeline.kafka.policy import dead_letter_for
from image_pipeline.messages import DeliveryMessage, MessageError
from image_pipeline.records.events import json_bytes
from image_pipeline.storage import atomic_write_bytes, remove_abandoned_temp_files

logger = logging.getLogger(__name__)
CLIENT_ID = "image-alert-delivery"
POLL_MS = 200


@dataclass
class DeliveryStats:
    """What the worker did, for progress lines and tests."""

    read: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)


class _Listener(AsyncConsumerRebalanceListener):
    """Commits what is finished in revoked partitions while they are still ours; the loop drops their jobs."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        offsets = self.worker.finished_offsets(set(revoked))
        if offsets:
            try:
                await self.worker.consumer.commit_async(offsets)
                self.worker.note_committed(offsets)
            except KafkaError as exc:
                logger.warning("commit on revoke failed (%s); the new owner skips what is done", exc)
        self.worker.revoked.extend(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            logger.info("assigned partitions: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    async def on_partitions_lost(self, lost: Any) -> None:
        self.worker.revoked.extend(lost)


class DeliveryWorker:
    """Reads deliveries, dispatches them to one lane per destination, commits what is finished."""

    def __init__(self, cfg: Config, consumer: KafkaConsumer, producer: KafkaProducer, stop: threading.Event,
                 env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.stats = DeliveryStats()
        self.tracker = OffsetTracker()
        self.revoked: list[TopicPartition] = []
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self._lane_stop = threading.Event()
        self._committed: dict[TopicPartition, int] = {}
        self.destinations = destinations(cfg)
        env = dict(os.environ) if env is None else env
        self.lanes = {d: Lane(cfg, dest, make_sender(cfg, dest, env), self.outcomes, self._lane_stop)
                      for d, dest in self.destinations.items()}
        _warn_missing_secrets(cfg, self.destinations, env)
        consumer.subscribe([cfg.topics.deliveries.name], listener=_Listener(self))

    def run(self, until_idle: float | None = None, max_messages: int | None = None) -> DeliveryStats:
        """Run until stopped, or idle with nothing in flight, or max_messages read and finished."""
        for lane in self.lanes.values():
            lane.start()
        last_record = last_progress = time.monotonic()
        try:
            while not self.stop.is_set():
                self._finish_outcomes()
                self._apply_revocations()
                self._commit()
                if self._done(last_record, until_idle, max_messages):
                    break
                if self._read_batch(max_messages):
                    last_record = time.monotonic()
                if time.monotonic() - last_progress >= 5:
                    self.progress()
                    last_progress = time.monotonic()
        finally:
            self._lane_stop.set()
            for lane in self.lanes.values():
                if lane.is_alive():
                    lane.join(timeout=30)  # one attempt at most: bounded by the channel's timeout
            try:
                self._finish_outcomes()  # what finished while the lanes stopped is committed too
                self._commit()
            except FatalError as exc:
                logger.error("not committing the last outcomes: %s", exc)
        return self.stats

    def _done(self, last_record: float, until_idle: float | None, max_messages: int | None) -> bool:
        if self.tracker.in_flight():
            return False
        if max_messages is not None and self.stats.read >= max_messages:
            return True
        return until_idle is not None and time.monotonic() - last_record >= until_idle

    def _read_batch(self, max_messages: int | None) -> bool:
        full = self.tracker.in_flight() >= self.cfg.delivery.max_in_flight
        full = full or (max_messages is not None and self.stats.read >= max_messages)
        assigned = self.consumer.assignment()
        if full and assigned:
            self.consumer.pause(*assigned)  # keep polling (group membership) without reading more
        elif assigned:
            self.consumer.resume(*assigned)
        batch = self.consumer.poll(timeout_ms=POLL_MS)
        for records in batch.values():
            for record in records:
                self._accept(record)
        return bool(batch)

    def _accept(self, record: Any) -> None:
        """Skip a finished delivery, dead-letter a bad one, hand the rest to their lane."""
        self.stats.read += 1
        tp = TopicPartition(record.topic, record.partition)
        self.tracker.start(tp, record.offset)
        try:
            delivery = DeliveryMessage.decode(record.value)
        except MessageError as exc:
            self._dead_letter(record, exc)
            self.tracker.finish(tp, record.offset)
            return
        status = read_status(self.cfg, delivery.alert_id, delivery.alertee) or {}
        if status.get("status") in TERMINAL:
            self.stats.skipped += 1
            logger.debug("already %s: %s", status["status"], delivery.idempotency_key)
            self.tracker.finish(tp, record.offset)
            return
        job = Job(delivery, record, [(tp, record.offset)], attempts=int(status.get("attempts") or 0),
                  first_at=status.get("first_attempt_at"), due=float(status.get("next_attempt_at") or 0.0),
                  last_error=status.get("last_error"))
        lane = self.lanes.get(delivery.destination)
        if lane is None:
            self._fail(job, f"destination {delivery.destination} ({delivery.target}) is not in this worker's config")
            return
        lane.submit(job)

    def _finish_outcomes(self) -> None:
        while True:
            try:
                outcome = self.outcomes.get_nowait()
            except queue.Empty:
                return
            if outcome.status == "fatal" or outcome.job is None:
                raise FatalError(f"a delivery lane stopped: {outcome.error}")
            if outcome.status == "failed":
                self._fail(outcome.job, outcome.error or "failed")
                continue
            self.stats.delivered += 1
            for tp, offset in outcome.job.offsets:
                self.tracker.finish(tp, offset)

    def _fail(self, job: Job, reason: str) -> None:
        """Dead-letter with the reason, then record `failed`: a crash in between only repeats the letter."""
        self._dead_letter(job.record, DeliveryFailure(reason))
        now = time.time()
        d = job.delivery
        atomic_write_bytes(status_path(self.cfg, d.alert_id, d.alertee),
                           json_bytes(status_record(d, "failed", job.attempts, job.first_at, now, reason)))
        self.stats.failed += 1
        for tp, offset in job.offsets:
            self.tracker.finish(tp, offset)

    def _dead_letter(self, record: Any, error: BaseException) -> None:
        letter = dead_letter_for(record, error, CLIENT_ID)
        self.stats.dead_lettered += 1
        logger.warning("dead-lettered topic=%s partition=%s offset=%s: %s", record.topic, record.partition,
                       record.offset, letter.error)
        try:
            future = self.producer.send(self.cfg.topics.dead_letter.name, key=record.key, value=letter.encode())
            self.producer.flush(timeout=self.cfg.kafka.delivery_timeout_ms / 1000 + 5)
        except KafkaError as exc:
            raise FatalError(f"cannot dead-letter offset {record.offset}: {exc}") from exc
        if future.failed():
            raise FatalError(f"dead letter of offset {record.offset} never reached Kafka: {future.exception}")

    def finished_offsets(self, partitions: set[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        """What may be committed in these partitions and is not yet (called in poll, on the main thread)."""
        return {tp: OffsetAndMetadata(p, "", -1) for tp, p in self.tracker.points().items()
                if tp in partitions and p > self._committed.get(tp, -1)}

    def note_committed(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Remember offsets committed outside _commit()."""
        self._committed.update({tp: om.offset for tp, om in offsets.items()})

    def _apply_revocations(self) -> None:
        revoked, self.revoked = set(self.revoked), []
        if not revoked:
            return
        self.tracker.forget(revoked)
        for tp in revoked:
            self._committed.pop(tp, None)
        for lane in self.lanes.values():
            lane.drop(revoked)

    def _commit(self) -> None:
        offsets = self.finished_offsets(set(self.tracker.points()))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
            self.note_committed(offsets)
        except (CommitFailedError, KafkaError) as exc:
            logger.warning("commit failed (%s); those deliveries will be read again and skipped if done", exc)

    def progress(self) -> None:
        """One INFO line: what was read, delivered, failed, skipped, and what waits."""
        waiting = sum(lane.queued() for lane in self.lanes.values())
        logger.info("read %d deliveries; delivered %d; failed %d; skipped %d (done before); waiting %d",
                    self.stats.read, self.stats.delivered, self.stats.failed, self.stats.skipped, waiting)


def _warn_missing_secrets(cfg: Config, found: dict[str, Destination], env: dict[str, str]) -> None:
    """Say at start which webhook secrets are missing; their deliveries fail with that reason."""
    for dest in found.values():
        name = dest.webhook.secret_env if dest.webhook else ""
        if name and secret(name, env, secrets_path(cfg)) is None:
            logger.error("webhook %s: its secret %s is not in the environment or the secrets file; "
                         "its deliveries will fail", dest.target, name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of image_alert_delivery.py."""
    return cli.consumer_main("image_alert_delivery.py", "Deliver alerts by webhook and e-mail, with retries.",
                             argv, run)


def run(cfg: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Consume the deliveries topic until stopped; returns the exit code."""
    cli.ensure_data_dirs(cfg)
    stop = stop or cli.stop_event_on_signals()
    ensure_topics(cfg)
    removed = remove_abandoned_temp_files(cfg.alerts_dir)
    if removed:
        logger.info("removed %d temp file(s) left by a process that died mid-write", removed)
    found = destinations(cfg)
    logger.info("delivering from topic %s as group %s; %d destination(s): %s", cfg.topics.deliveries.name,
                cfg.groups.delivery, len(found), ", ".join(f"{d.channel} {d.target}" for d in found.values()) or "none")
    producer = make_producer(cfg, CLIENT_ID)
    try:
        consumer = make_consumer(cfg, cfg.groups.delivery, CLIENT_ID)
        worker = DeliveryWorker(cfg, consumer, producer, stop)
        try:
            worker.run(args.until_idle, args.max_messages)
        finally:
            consumer.close(autocommit=False)
        worker.progress()
    finally:
        close_producer(producer)
    return 0
