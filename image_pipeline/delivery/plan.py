"""Pure delivery decisions: who is an alertee, the cooldown that groups a storm, retries, the rate cap.

Nothing here does I/O or reads a clock: times come in as arguments, so the same inputs always give
the same decisions, which is what makes a redone alert after a crash decide exactly as the first time.

The cooldown runs on the capture clock (the event's captured_at), not the wall clock, for the same
reason: an alerter that replays events after a restart holds back the same alerts as before.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from image_pipeline.delivery.settings import DeliveryConfig

if TYPE_CHECKING:
    from image_pipeline.config import Subscription

# A held alert's event id is kept for the next delivery up to this many; beyond it, only counted.
MAX_GROUPED_IDS = 100


def slug(name: str) -> str:
    """A subscription name as a short file-name-safe word: 'Security desk' -> 'security-desk'."""
    word = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return word or "subscription"


def destination_id(channel: str, target: str) -> str:
    """A stable id of one destination (a URL or a mailbox), safe in file names and Kafka keys."""
    return f"{channel}-{hashlib.sha1(target.encode('utf-8')).hexdigest()[:10]}"


@dataclass(frozen=True)
class Alertee:
    """One subscription's one channel: who the idempotency key and the delivery status are about."""

    subscription: str
    channel: str  # webhook | email | file
    target: str  # the URL, the address, or the subscription's contact for the file channel

    @property
    def destination(self) -> str:
        """The destination id: deliveries to one URL or mailbox share its queue and rate cap."""
        return destination_id(self.channel, self.target)

    @property
    def alertee_id(self) -> str:
        """The alertee half of the idempotency key, e.g. 'security-desk.webhook-1a2b3c4d5e'."""
        return f"{slug(self.subscription)}.{self.destination}"


def alertees_of(sub: Subscription) -> list[Alertee]:
    """A subscription's channels; no `notify` means the file channel alone, as before channels existed."""
    if not sub.notify:
        return [Alertee(sub.name, "file", sub.contact)]
    found = []
    for item in sub.notify:
        if item.webhook is not None:
            found.append(Alertee(sub.name, "webhook", item.webhook.url))
        elif item.email is not None:
            found.append(Alertee(sub.name, "email", item.email.to))
        else:
            found.append(Alertee(sub.name, "file", sub.contact))
    return found


def idempotency_key(alert_id: str, alertee_id: str) -> str:
    """The key every delivery carries, so a receiver can drop a repeat: alert id plus alertee."""
    return f"{alert_id}/{alertee_id}"


# ---------------------------------------------------------------- cooldown


@dataclass(frozen=True)
class Decision:
    """Whether an alert is sent to a subscription now, and how many held alerts it carries."""

    send: bool
    grouped_count: int = 0  # held alerts this one reports ("and 7 more")
    grouped_event_ids: tuple[str, ...] = ()  # the first MAX_GROUPED_IDS of them


def cooldown_key(subscription: str, event_type: str) -> str:
    """The key of one window in a camera's cooldown state (the camera is the state file)."""
    return f"{subscription}|{event_type}"


def decide(state: dict[str, Any], key: str, event_id: str, at: float, window_s: float) -> tuple[Decision, bool]:
    """Send or hold one alert, updating the camera's cooldown state in place; returns (decision, changed).

    At most one alert per window is sent; the alerts held back inside it are counted into the next
    one sent. Deciding again on an alert already decided (a redo after a crash) gives the same answer.
    """
    entry: dict[str, Any] | None = state.get(key)
    if entry is not None:
        if entry.get("sent") == event_id:
            return Decision(True, int(entry.get("sent_grouped_count", 0)), tuple(entry.get("sent_grouped", ()))), False
        if event_id in entry.get("held", ()) or event_id in entry.get("sent_grouped", ()):
            return Decision(False), False  # held before, maybe already counted into the last one sent
    if entry is None or window_s <= 0 or at - float(entry.get("sent_at", 0.0)) >= window_s:
        held = list(entry.get("held", ())) if entry else []
        count = int(entry.get("held_count", 0)) if entry else 0
        state[key] = {"sent": event_id, "sent_at": at, "sent_grouped": held, "sent_grouped_count": count,
                      "held": [], "held_count": 0}
        return Decision(True, count, tuple(held)), True
    if len(entry["held"]) < MAX_GROUPED_IDS:
        entry["held"] = [*entry["held"], event_id]
    entry["held_count"] = int(entry.get("held_count", 0)) + 1
    return Decision(False), True


def grouped_text(count: int, event_type: str, camera_id: str) -> str:
    """The line a delivery adds for the alerts the cooldown held back."""
    if count <= 0:
        return ""
    plural = "alert" if count == 1 else "alerts"
    return f"and {count} more {event_type} {plural} on camera {camera_id} held back by the cooldown"


# ---------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by time since the first attempt."""

    max_attempts: int
    max_s: float
    initial_s: float
    cap_s: float
    jitter: float

    @classmethod
    def from_config(cls, d: DeliveryConfig) -> RetryPolicy:
        """The policy of the `delivery:` section."""
        return cls(d.max_attempts, d.max_minutes * 60, d.backoff_initial_s, d.backoff_max_s, d.jitter)

    def delay(self, attempts: int, rand: float) -> float:
        """The wait after `attempts` failed attempts; rand in [0, 1) shortens it by up to `jitter`."""
        base = min(self.cap_s, self.initial_s * 2 ** max(0, attempts - 1))
        return base * (1 - self.jitter * rand)

    def next_attempt(self, attempts: int, first_at: float, now: float, rand: float) -> float | None:
        """When to try again after `attempts` failures, or None: the delivery has failed for good."""
        if attempts >= self.max_attempts:
            return None
        due = now + self.delay(attempts, rand)
        return due if due - first_at <= self.max_s else None


# ---------------------------------------------------------------- rate cap


@dataclass
class TokenBucket:
    """A per-destination rate cap: `rate_per_minute` sends, in bursts of at most that many."""

    rate_per_minute: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds until a send is allowed (0: now); does not take the token."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * 60 / self.rate_per_minute

    def take(self, now: float) -> None:
        """Spend one token (call only when wait_s(now) is 0)."""
        self._refill(now)
        self.tokens -= 1

    def _refill(self, now: float) -> None:
        if self.tokens < 0:  # a fresh bucket starts full
            self.tokens, self.updated = self.rate_per_minute, now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.rate_per_minute, self.tokens + elapsed * self.rate_per_minute / 60)
        self.updated = now
