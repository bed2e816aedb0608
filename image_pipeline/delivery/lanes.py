"""One lane per destination: a thread that sends its deliveries, retries them, and keeps to the rate cap.

A lane holds its jobs in a heap by due time, so a delivery waiting for its next attempt never blocks
the ones behind it, and a lane blocked on a destination that does not answer blocks no other lane.
Each lane's loop is bounded: it waits at most 1 s at a time, checks its stop flag every round, and
one attempt is bounded by the channel's timeout.

A lane writes the status file of each attempt (pending with the last error, or delivered) before it
reports the outcome; the worker commits an offset only after the outcome is reported. A delivery
that fails for good is reported as `failed` without writing: the worker dead-letters it first.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from image_pipeline.config import Config
from image_pipeline.delivery import channels, payload
from image_pipeline.delivery.channels import DeliveryFailure
from image_pipeline.delivery.plan import RetryPolicy, TokenBucket, alertees_of
from image_pipeline.delivery.settings import EmailChannel, WebhookChannel, secret, secrets_path
from image_pipeline.delivery.status import status_path, status_record
from image_pipeline.kafka.policy import describe_error
from image_pipeline.messages import DeliveryMessage
from image_pipeline.records.events import json_bytes
from image_pipeline.storage import UnsafePathError, atomic_write_bytes, safe_join

logger = logging.getLogger(__name__)
MAX_KEY_FRAME_BYTES = 10_000_000
Offset = tuple[Any, int]  # (TopicPartition, offset)


@dataclass
class Job:
    """One delivery on its way: the message, the records it came from, and where its retries stand."""

    delivery: DeliveryMessage
    record: Any  # the first Kafka record of it, for a dead letter
    offsets: list[Offset]
    attempts: int = 0
    first_at: float | None = None
    due: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a lane reports: delivered, failed (to dead-letter), or fatal (the lane cannot go on)."""

    job: Job | None  # None for a fatal outcome, which concerns the lane, not one delivery
    status: str
    error: str | None = None


@dataclass(frozen=True)
class Destination:
    """A configured destination; sends go only to these, never to a URL a message names."""

    destination_id: str
    channel: str
    target: str
    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None

    @property
    def rate_per_minute(self) -> int:
        """The rate cap of this destination."""
        chosen = self.webhook or self.email
        return chosen.rate_per_minute if chosen else 60


def destinations(cfg: Config) -> dict[str, Destination]:
    """Every webhook and mailbox of the subscriptions, by destination id (the first settings win)."""
    found: dict[str, Destination] = {}
    for sub in cfg.subscriptions:
        for item, alertee in zip(sub.notify, alertees_of(sub), strict=False):
            if alertee.channel != "file" and alertee.destination not in found:
                found[alertee.destination] = Destination(alertee.destination, alertee.channel, alertee.target,
                                                         item.webhook, item.email)
    return found


def make_sender(cfg: Config, dest: Destination, env: dict[str, str]) -> Callable[[DeliveryMessage], None]:
    """The function that makes one attempt to this destination; raises DeliveryFailure."""
    if dest.webhook is not None:
        hook = dest.webhook

        def send_webhook(delivery: DeliveryMessage) -> None:
            key = secret(hook.secret_env, env, secrets_path(cfg))
            if hook.secret_env and key is None:
                raise DeliveryFailure(f"the webhook secret {hook.secret_env} is not set", permanent=True)
            body = payload.webhook_body(delivery)
            channels.post_webhook(hook.url, body, payload.webhook_headers(delivery, body, key, time.time()),
                                  hook.timeout_s)
        return send_webhook

    def send_mail(delivery: DeliveryMessage) -> None:
        password = secret(cfg.smtp.password_env, env, secrets_path(cfg))
        message = payload.email_message(delivery, cfg.smtp.sender, read_key_frame(cfg, delivery), time.time())
        channels.send_email(cfg.smtp, password, message)
    return send_mail


def read_key_frame(cfg: Config, delivery: DeliveryMessage) -> bytes | None:
    """The key frame's bytes as they are now (the episode may have moved it), or None."""
    try:
        path = safe_join(cfg.data_dir, delivery.key_frame_path)
        if path.stat().st_size > MAX_KEY_FRAME_BYTES:
            return None
        return path.read_bytes()
    except (OSError, UnsafePathError):
        return None


class Lane(threading.Thread):
    """The sending thread of one destination."""

    def __init__(self, cfg: Config, dest: Destination, send: Callable[[DeliveryMessage], None],
                 outcomes: queue.Queue[Outcome], stop: threading.Event, rng: random.Random | None = None) -> None:
        super().__init__(name=f"lane-{dest.destination_id}", daemon=True)
        self.cfg = cfg
        self.dest = dest
        self.send = send
        self.outcomes = outcomes
        self.stop = stop
        self.policy = RetryPolicy.from_config(cfg.delivery)
        self.bucket = TokenBucket(dest.rate_per_minute)
        self.rng = rng or random.Random()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Job]] = []
        self._by_key: dict[str, Job] = {}
        self._order = itertools.count()

    def submit(self, job: Job) -> None:
        """Queue a job; a repeat of a queued delivery (same idempotency key) joins it instead."""
        with self._cond:
            queued = self._by_key.get(job.delivery.idempotency_key)
            if queued is not None:
                queued.offsets.extend(job.offsets)
                return
            self._by_key[job.delivery.idempotency_key] = job
            heapq.heappush(self._heap, (job.due, next(self._order), job))
            self._cond.notify()

    def drop(self, partitions: set[Any]) -> None:
        """Forget queued jobs of partitions another worker owns now; it delivers them."""
        with self._cond:
            kept = []
            for item in self._heap:
                item[2].offsets[:] = [o for o in item[2].offsets if o[0] not in partitions]
                if item[2].offsets:
                    kept.append(item)
                else:
                    self._by_key.pop(item[2].delivery.idempotency_key, None)
            self._heap = kept
            heapq.heapify(self._heap)

    def queued(self) -> int:
        """Jobs waiting in this lane (for progress lines)."""
        with self._cond:
            return len(self._heap)

    def run(self) -> None:
        """Until stopped: take the earliest due job, keep to the rate cap, make one attempt."""
        try:
            while not self.stop.is_set():
                job = self._next_due()
                if job is not None:
                    self._attempt(job)
        except Exception as exc:  # a status file that cannot be written: the worker stops
            logger.error("lane %s stopped: %s", self.dest.destination_id, describe_error(exc))
            self.outcomes.put(Outcome(None, "fatal", describe_error(exc)))

    def _next_due(self) -> Job | None:
        with self._cond:
            now = time.time()
            if not self._heap or self._heap[0][0] > now:
                wait = min(1.0, self._heap[0][0] - now) if self._heap else 1.0
                self._cond.wait(max(0.01, wait))
                return None
            rate_wait = self.bucket.wait_s(time.monotonic())
            if rate_wait > 0:
                self._cond.wait(min(1.0, rate_wait))
                return None
            self.bucket.take(time.monotonic())
            _, _, job = heapq.heappop(self._heap)
            self._by_key.pop(job.delivery.idempotency_key, None)
            return job

    def _attempt(self, job: Job) -> None:
        now = time.time()
        job.attempts += 1
        job.first_at = job.first_at or now
        delivery = job.delivery
        try:
            self.send(delivery)
        except Exception as exc:
            failure = exc if isinstance(exc, DeliveryFailure) else DeliveryFailure(describe_error(exc))
            self._failed(job, failure, now)
            return
        self._write(job, status_record(delivery, "delivered", job.attempts, job.first_at, now, job.last_error,
                                       delivered_at=time.time()))
        logger.info("delivered %s channel=%s attempts=%d", delivery.idempotency_key, delivery.channel, job.attempts)
        self.outcomes.put(Outcome(job, "delivered"))

    def _failed(self, job: Job, failure: DeliveryFailure, now: float) -> None:
        job.last_error = failure.reason
        due = None if failure.permanent else self.policy.next_attempt(job.attempts, job.first_at or now, now,
                                                                       self.rng.random())
        key = job.delivery.idempotency_key
        if due is None:
            why = "refused for good" if failure.permanent else "gave up"
            spent = now - (job.first_at or now)
            reason = f"{why} after {job.attempts} attempt(s) over {spent:.1f} s: {failure.reason}"
            logger.warning("delivery failed %s: %s", key, reason)
            self.outcomes.put(Outcome(job, "failed", reason))
            return
        logger.info("attempt %d of %s failed (%s); next in %.1f s", job.attempts, key, failure.reason, due - now)
        self._write(job, status_record(job.delivery, "pending", job.attempts, job.first_at, now, failure.reason,
                                       next_at=due))
        job.due = due
        with self._cond:
            self._by_key[key] = job
            heapq.heappush(self._heap, (due, next(self._order), job))

    def _write(self, job: Job, record: dict[str, Any]) -> None:
        path = status_path(self.cfg, job.delivery.alert_id, job.delivery.alertee)
        atomic_write_bytes(path, json_bytes(record))


@dataclass
class OffsetTracker:
    """Which offsets of each partition are finished; a partition may be committed up to its first open one."""

    open: dict[Any, set[int]] = field(default_factory=dict)
    next: dict[Any, int] = field(default_factory=dict)

    def start(self, tp: Any, offset: int) -> None:
        """An offset was read and is not finished yet."""
        self.open.setdefault(tp, set()).add(offset)
        self.next[tp] = max(self.next.get(tp, 0), offset + 1)

    def finish(self, tp: Any, offset: int) -> None:
        """An offset's delivery is delivered, failed and dead-lettered, or skipped."""
        if tp in self.open:
            self.open[tp].discard(offset)

    def points(self) -> dict[Any, int]:
        """The offset each partition may be committed to: its first open one, or after the last read."""
        return {tp: min(self.open[tp]) if self.open.get(tp) else nxt for tp, nxt in self.next.items()}

    def forget(self, partitions: set[Any]) -> None:
        """Partitions this worker no longer owns."""
        for tp in partitions:
            self.open.pop(tp, None)
            self.next.pop(tp, None)

    def in_flight(self) -> int:
        """Offsets read and not finished."""
        return sum(len(s) for s in self.open.values())
