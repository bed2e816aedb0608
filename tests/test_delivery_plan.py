"""The pure half of alert delivery: config, cooldown, grouping, retry schedule, rate cap, payloads."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from image_pipeline.config import Config, ConfigError, Subscription, load_config
from image_pipeline.delivery.lanes import OffsetTracker, destinations
from image_pipeline.delivery.payload import email_message, signature, verify, webhook_body, webhook_headers
from image_pipeline.delivery.plan import RetryPolicy, TokenBucket, alertees_of, decide, slug
from image_pipeline.delivery.routing import delivery_sends, plan_deliveries
from image_pipeline.delivery.settings import DeliveryConfig, Notify, WebhookChannel, secret
from image_pipeline.messages import DeliveryMessage, EventMessage, MessageError
from image_pipeline.stages.alerting import AlertStep, EventInput

ISSUE_EXAMPLE = """
smtp: {host: 127.0.0.1, port: 25, from: pipeline@example.com}
subscriptions:
  - name: Security desk
    cameras: ["*"]
    event_types: [intrusion]
    min_score: 0.5
    notify:
      - webhook: {url: "https://hooks.example.com/desk", secret_env: DESK_HOOK_SECRET}
      - email: {to: security-desk@example.com}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_issue_example_loads_and_from_becomes_the_sender(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), env={})
    (sub,) = cfg.subscriptions
    assert cfg.smtp.sender == "pipeline@example.com"
    assert [n.channel() for n in sub.notify] == ["webhook", "email"]
    assert sub.notify[0].webhook and sub.notify[0].webhook.secret_env == "DESK_HOOK_SECRET"
    assert [(a.channel, a.target) for a in alertees_of(sub)] == [
        ("webhook", "https://hooks.example.com/desk"), ("email", "security-desk@example.com")]
    assert set(destinations(cfg)) == {a.destination for a in alertees_of(sub)}


def test_a_subscription_with_only_a_contact_keeps_the_file_channel(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "subscriptions: [{name: Desk, contact: desk@example.com}]\n"), env={})
    (alertee,) = alertees_of(cfg.subscriptions[0])
    assert (alertee.channel, alertee.target) == ("file", "desk@example.com")
    assert destinations(cfg) == {}


@pytest.mark.parametrize(("text", "named"), [
    ("subscriptions: [{name: D, notify: [{webhook: {url: 'ftp://x'}}]}]", r"subscriptions\[0\]\.notify\[0\]\.webhook"),
    ("subscriptions: [{name: D, notify: [{}]}]", r"subscriptions\[0\]\.notify\[0\]: must name exactly one channel"),
    ("subscriptions: [{name: D, notify: [{email: {to: nobody}}]}]", r"notify\[0\]\.email\.to"),
    ("subscriptions: [{name: D, notify: [{webhook: {url: 'http://h', secret: a}}]}]", r"webhook\.secret: unknown key"),
    ("subscriptions: [{name: D, cooldown_s: -1}]", r"subscriptions\[0\]\.cooldown_s"),
    ("smtp: {from: not-an-address}", r"smtp\.from"),
    ("delivery: {max_attempts: 0}", r"delivery\.max_attempts"),
])
def test_bad_delivery_settings_are_one_line_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(write(tmp_path, text + "\n"), env={})


def test_secrets_come_from_the_environment_then_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# comment\nDESK_HOOK_SECRET = from-file\n")
    assert secret("DESK_HOOK_SECRET", {"DESK_HOOK_SECRET": "from-env"}, str(secrets)) == "from-env"
    assert secret("DESK_HOOK_SECRET", {}, str(secrets)) == "from-file"
    assert secret("OTHER", {}, str(secrets)) is None
    assert secret("", {}, "") is None


def test_cooldown_sends_one_per_window_and_the_next_counts_the_held() -> None:
    state: dict[str, object] = {}
    decisions = [decide(state, "desk|intrusion", f"e{i}", 1000.0 + i, 60.0)[0] for i in range(50)]
    assert [d.send for d in decisions] == [True] + [False] * 49
    later, changed = decide(state, "desk|intrusion", "e50", 1000.0 + 61, 60.0)
    assert later.send and changed and later.grouped_count == 49 and later.grouped_event_ids[:2] == ("e1", "e2")


def test_deciding_again_after_a_crash_gives_the_same_answer() -> None:
    state: dict[str, object] = {}
    decide(state, "k", "a", 0.0, 60.0)
    decide(state, "k", "b", 1.0, 60.0)
    third = decide(state, "k", "c", 70.0, 60.0)[0]
    snapshot = json.loads(json.dumps(state))
    assert decide(state, "k", "c", 70.0, 60.0) == (third, False), "a redone sent alert is sent again, same group"
    assert decide(state, "k", "b", 1.0, 60.0)[0].send is False
    assert state == snapshot


def test_a_zero_cooldown_sends_everything() -> None:
    state: dict[str, object] = {}
    assert all(decide(state, "k", f"e{i}", 0.0, 0.0)[0].send for i in range(5))


def test_retry_delays_double_up_to_the_cap_and_jitter_only_shortens() -> None:
    policy = RetryPolicy(max_attempts=10, max_s=3600, initial_s=1.0, cap_s=8.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert policy.delay(3, 0.999) == pytest.approx(2.002)
    assert all(2.0 <= policy.delay(3, r / 10) <= 4.0 for r in range(10))


def test_retries_stop_at_n_attempts_or_t_minutes() -> None:
    policy = RetryPolicy.from_config(DeliveryConfig(max_attempts=4, max_minutes=1.0, backoff_initial_s=10,
                                                    backoff_max_s=100, jitter=0))
    assert policy.next_attempt(1, 0.0, 0.0, 0.0) == 10.0
    assert policy.next_attempt(4, 0.0, 0.0, 0.0) is None, "N attempts"
    assert policy.next_attempt(3, 0.0, 30.0, 0.0) is None, "the next one would be after T minutes"


def test_the_rate_cap_allows_a_burst_then_one_per_interval() -> None:
    bucket = TokenBucket(rate_per_minute=3)
    for _ in range(3):
        assert bucket.wait_s(0.0) == 0
        bucket.take(0.0)
    assert bucket.wait_s(0.0) == pytest.approx(20.0)
    assert bucket.wait_s(20.0) == 0


def test_the_offset_tracker_commits_up_to_the_first_unfinished_delivery() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.start("p0", offset)
    for offset in (0, 1, 3, 4):
        tracker.finish("p0", offset)
    assert tracker.points() == {"p0": 2} and tracker.in_flight() == 1
    tracker.finish("p0", 2)
    assert tracker.points() == {"p0": 5}


def delivery(**changes: object) -> DeliveryMessage:
    base = DeliveryMessage(
        idempotency_key="A-1234abcd/security-desk.webhook-0123456789", alert_id="A-1234abcd",
        event_id="cam-01-intrusion-000042", event_type="intrusion", camera_id="cam-01", score=0.9,
        summary="Someone entered the view of camera cam-01.", subscription="Security desk",
        alertee="security-desk.webhook-0123456789", channel="webhook", destination="webhook-0123456789",
        target="https://hooks.example.com/desk", key_frame_path="image_event_database/x_annotated.jpg",
        alert_path="image_event_alerts/x.json", captured_at=1_800_000_000.0, alerted_at=1_800_000_001.0,
        grouped_count=7, grouped_event_ids=["cam-01-intrusion-000043"])
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_webhook_signature_covers_timestamp_and_body() -> None:
    message = delivery()
    body = webhook_body(message)
    headers = webhook_headers(message, body, "s3cret", now=1_800_000_000.5)
    assert headers["Idempotency-Key"] == message.idempotency_key
    assert verify("s3cret", headers["X-Pipeline-Timestamp"], body, headers["X-Pipeline-Signature"])
    assert not verify("s3cret", headers["X-Pipeline-Timestamp"], body + b" ", headers["X-Pipeline-Signature"])
    assert not verify("other", headers["X-Pipeline-Timestamp"], body, headers["X-Pipeline-Signature"])
    assert signature("k", "1", b"{}") == "sha256=" + hmac.new(b"k", b"1.{}", hashlib.sha256).hexdigest()
    assert "X-Pipeline-Signature" not in webhook_headers(message, body, None, 0.0)
    assert json.loads(body)["grouped"] == "and 7 more intrusion alerts on camera cam-01 held back by the cooldown"


def test_the_email_has_subject_body_key_frame_and_a_stable_message_id() -> None:
    mail = email_message(delivery(channel="email", target="desk@example.com"), "pipeline@example.com",
                         b"\xff\xd8jpeg", now=0.0)
    assert mail["Subject"] == "[alert A-1234abcd] intrusion on cam-01 (and 7 more)"
    assert "cam-01-intrusion-000043" in str(mail.get_body(("plain",)))
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg" and attachment.get_content() == b"\xff\xd8jpeg"
    again = email_message(delivery(channel="email", target="desk@example.com"), "pipeline@example.com", None, 5.0)
    assert again["Message-ID"] == mail["Message-ID"]
    assert "could not be read" in str(again.get_body(("plain",)))


def test_a_delivery_message_round_trips_and_refuses_bad_fields() -> None:
    message = delivery()
    assert DeliveryMessage.decode(message.encode()) == message
    for field, bad in [("channel", "sms"), ("alertee", "../x"), ("grouped_event_ids", ["a/b"]),
                       ("key_frame_path", "/etc/passwd"), ("grouped_count", -1)]:
        raw = json.loads(message.encode())
        raw[field] = bad
        with pytest.raises(MessageError, match=field):
            DeliveryMessage.decode(json.dumps(raw).encode())


def event(number: int, captured_at: float) -> EventMessage:
    return EventMessage(phase="start", event_id=f"cam-01-intrusion-{number:06d}", event_type="intrusion",
                        camera_id="cam-01", score=0.9, first_image_id="cam-01-00000012",
                        last_image_id="cam-01-00000012", key_image_id="cam-01-00000012", frame_count=1,
                        record_path="image_event_database/x.json", captured_at=captured_at)


def hooked(cfg: Config, cooldown_s: float) -> Config:
    notify = (Notify(webhook=WebhookChannel("http://127.0.0.1:9/hook")),)
    sub = Subscription(name="Security desk", event_types=("intrusion",), notify=notify, cooldown_s=cooldown_s)
    return cfg.replace(subscriptions=(sub,))


def test_the_alert_step_sends_one_delivery_and_holds_the_storm(tmp_path: Path) -> None:
    cfg = hooked(load_config(env={}).with_overrides(data_dir=str(tmp_path)), cooldown_s=60)
    step = AlertStep(cfg, clock=lambda: 2000.0)
    paths = {"key_image": "image_database/cam-01/cam-01-00000012.jpg", "annotated": "image_event_database/a.jpg"}
    first = step.apply(EventInput(event(1, 1000.0), paths, None, {}), None)
    deliveries = [s for s in first.sends if s.topic == cfg.topics.deliveries.name]
    assert len(deliveries) == 1 and (deliveries[0].key or b"").startswith(b"webhook-"), "keyed by destination"
    cooldown = json.loads(first.writes[-2].data)
    assert first.writes[-2].path.parent.name == "cooldown", "the state is written before the alert record"
    second = step.apply(EventInput(event(2, 1010.0), paths, None, cooldown), None)
    assert [s.topic for s in second.sends] == [cfg.topics.alerts.name], "held: the alert, no delivery"
    record = json.loads(second.writes[-1].data)
    assert record["deliveries"][0]["status"] == "held"


def test_a_replayed_alert_resends_only_its_pending_deliveries(tmp_path: Path) -> None:
    cfg = hooked(load_config(env={}).with_overrides(data_dir=str(tmp_path)), cooldown_s=0)
    record = {"alert_id": "A-1", "event_id": "cam-01-intrusion-000001", "event_type": "intrusion",
              "camera_id": "cam-01", "score": 0.9, "summary": "s", "captured_at": 1.0, "alerted_at": 2.0,
              "paths": {"alert": "image_event_alerts/x.json", "key_image": "image_database/cam-01/k.jpg"}}
    entries, _ = plan_deliveries(list(cfg.subscriptions), "A-1", "cam-01-intrusion-000001", "intrusion", 1.0, {})
    held = {**entries[0], "alertee": "other", "status": "held"}
    sends = delivery_sends(cfg, {**record, "deliveries": [*entries, held]})
    assert len(sends) == 1 and DeliveryMessage.decode(sends[0].value).alertee == entries[0]["alertee"]


def test_slugs_are_safe_words() -> None:
    assert slug("Security desk") == "security-desk"
    assert slug("  ¡¿ ") == "subscription"
    assert len(slug("x" * 300)) == 40
