"""Real receivers for the delivery tests: a webhook server (http.server) and an SMTP server (aiosmtpd).

Both listen on 127.0.0.1 on a free port. The webhook receiver behaves like an application that
deduplicates by the Idempotency-Key header: `accepted` holds each key once, `repeats` counts the
rest. What it answers is scripted per key and attempt number.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from image_pipeline.config import Config, Subscription
from image_pipeline.delivery.payload import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from image_pipeline.delivery.settings import DeliveryConfig, EmailChannel, Notify, SmtpConfig, WebhookChannel
from image_pipeline.kafka.clients import make_producer
from image_pipeline.messages import EventMessage
from tests.web_support import write_event_fixture

HANG_LIMIT_S = 30.0  # a "hang" answer waits at most this long (or until the receiver closes)

# An answer: "ok" (200), "500", "404", "hang" (never answers), or "hold" (sets `held`, waits for
# `release`, then accepts: the sender may be dead by then).
Script = Callable[[str, int], str]


def always_ok(_key: str, _attempt: int) -> str:
    """Accept every attempt."""
    return "ok"


@dataclasses.dataclass
class Attempt:
    """One request the receiver saw."""

    key: str
    number: int  # 1 for the first attempt of this key
    at: float
    signed_ok: bool
    body: dict[str, Any]


class WebhookReceiver:
    """An HTTP receiver on a free loopback port that scripts its answers and deduplicates deliveries."""

    def __init__(self, secret: str = "", script: Script = always_ok) -> None:
        self.secret = secret
        self.script = script
        self.attempts: list[Attempt] = []
        self.accepted: dict[str, dict[str, Any]] = {}  # what the application processed, once per key
        self.repeats = 0  # deliveries the application dropped as repeats
        self.held = threading.Event()
        self.release = threading.Event()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = receiver.on_request(dict(self.headers.items()), body)
                if answer == "hang":
                    receiver.closing.wait(HANG_LIMIT_S)
                    return
                code = 200 if answer == "ok" else int(answer)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests assert on what was received."""

        return Handler

    def on_request(self, headers: dict[str, str], body: bytes) -> str:
        """Record an attempt, answer as scripted, and hand an accepted delivery to the application once."""
        key = headers.get(IDEMPOTENCY_HEADER, "")
        signed_ok = bool(self.secret) and verify(self.secret, headers.get(TIMESTAMP_HEADER, ""), body,
                                                 headers.get(SIGNATURE_HEADER, ""))
        with self._lock:
            number = 1 + sum(a.key == key for a in self.attempts)
            self.attempts.append(Attempt(key, number, time.monotonic(), signed_ok, json.loads(body)))
        answer = self.script(key, number)
        if answer == "hold":
            self.held.set()
            self.release.wait(HANG_LIMIT_S)
            answer = "ok"
        if answer == "ok":
            with self._lock:
                if key in self.accepted:
                    self.repeats += 1
                else:
                    self.accepted[key] = json.loads(body)
        return answer

    def close(self) -> None:
        """Stop serving; a hanging request returns."""
        self.closing.set()
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


class _MailHandler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.add(message)
        return "250 Message accepted for delivery"


class SmtpInbox:
    """A real SMTP server (aiosmtpd) on a free loopback port; keeps every message with its arrival time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, EmailMessage]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(_MailHandler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def add(self, message: EmailMessage) -> None:
        """Called by the handler for each mail."""
        with self._lock:
            self.messages.append((time.monotonic(), message))

    def close(self) -> None:
        """Stop the server."""
        self.controller.stop()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll a condition every 50 ms until it holds, or fail naming it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


FAST_RETRIES = DeliveryConfig(max_attempts=6, max_minutes=2.0, backoff_initial_s=0.2, backoff_max_s=1.0, jitter=0.5)


def webhook(url: str, secret_env: str = "", timeout_s: float = 5.0, rate_per_minute: int = 600) -> Notify:
    """A webhook channel."""
    return Notify(webhook=WebhookChannel(url, secret_env, timeout_s, rate_per_minute))


def mailbox(to: str, rate_per_minute: int = 600) -> Notify:
    """An e-mail channel."""
    return Notify(email=EmailChannel(to, rate_per_minute))


def delivery_config(cfg: Config, notify: tuple[Notify, ...], smtp_port: int = 25, cooldown_s: float = 0.0,
                    retries: DeliveryConfig = FAST_RETRIES) -> Config:
    """The test's pipeline config with one intrusion subscription notifying these channels."""
    sub = Subscription(name="Security desk", cameras=("*",), event_types=("intrusion",), min_score=0.5,
                       notify=notify, cooldown_s=cooldown_s)
    return cfg.replace(subscriptions=(sub,), smtp=SmtpConfig(port=smtp_port), delivery=retries)


def publish_events(cfg: Config, first: int, count: int, camera_id: str = "cam-01", start: float = 1_800_000_000.0,
                   spacing_s: float = 1.0) -> list[str]:
    """Write `count` intrusion event records with real images, publish their start messages; event ids."""
    producer = make_producer(cfg, "delivery-test")
    ids = []
    try:
        for i in range(count):
            number = first + i
            record = write_event_fixture(cfg, camera_id=camera_id, number=number, started_at=start, with_alert=False)
            message = EventMessage(
                phase="start", event_id=record["event_id"], event_type="intrusion", camera_id=camera_id,
                score=0.87, first_image_id=record["first_image_id"], last_image_id=record["last_image_id"],
                key_image_id=record["key_image_id"], frame_count=1, record_path=record["paths"]["record"],
                captured_at=start + i * spacing_s,
            )
            producer.send(cfg.topics.events.name, key=camera_id.encode(), value=message.encode())
            ids.append(record["event_id"])
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return ids


def status_files(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every delivery status file by idempotency key."""
    found = {}
    for path in sorted(Path(cfg.alerts_dir, "deliveries").glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        found[record["idempotency_key"]] = record
    return found
