"""Alert delivery end to end on the real broker: the alerter and the delivery worker as processes,
a real webhook receiver (http.server) and a real SMTP server (aiosmtpd), all on 127.0.0.1.

The test plays the analyzer: it writes event records with real images and publishes their messages.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.runner import Client, PipelineProcesses
from image_pipeline.config import Config
from image_pipeline.delivery.settings import DeliveryConfig
from image_pipeline.messages import DeadLetter
from image_pipeline.stages.alerting import alert_id_for
from image_pipeline.web import create_app
from tests.delivery_support import (
    SmtpInbox,
    WebhookReceiver,
    delivery_config,
    mailbox,
    publish_events,
    status_files,
    wait_for,
    webhook,
)
from tests.pipeline_support import topic_values

pytestmark = [pytest.mark.kafka]
SECRET = "desk-hook-secret-for-tests"
# Waits end as soon as their condition holds; the bound only matters when something is wrong, and
# is generous because fsync and process start can be slow on a machine busy with other work.
WAIT_S = 60


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    """A real SMTP server on loopback."""
    server = SmtpInbox()
    yield server
    server.close()


def start_pipeline(procs: PipelineProcesses) -> tuple[Client, Client]:
    """Start the alerter and the delivery worker; return once both own their partitions."""
    alerter, worker = procs.start("alerter"), procs.start("delivery")
    for client in (alerter, worker):
        wait_for(functools.partial(joined_or_exited, client), WAIT_S, f"{client.role} to join its group")
        assert client.process.poll() is None, client.output()
    return alerter, worker


def joined_or_exited(client: Client) -> bool:
    """Whether a client owns its partitions now, or has exited."""
    return "assigned partitions" in client.output() or client.process.poll() is not None


def stop_cleanly(procs: PipelineProcesses) -> None:
    """SIGTERM every client; each must exit 0."""
    codes = procs.stop_all()
    assert all(code == 0 for code in codes.values()), codes


def test_webhook_failing_twice_then_accepting_is_delivered_once_with_a_valid_hmac(
        pipeline_config: Config, tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET, script=lambda _key, n: "500" if n <= 2 else "ok")
    cfg = delivery_config(pipeline_config, (webhook(receiver.url, "DESK_HOOK_SECRET"),))
    try:
        with PipelineProcesses(cfg, tmp_path / "run", {**os.environ, "DESK_HOOK_SECRET": SECRET}) as procs:
            start_pipeline(procs)
            event_ids = publish_events(cfg, 1, 3, spacing_s=120)
            wait_for(lambda: sum(s["status"] == "delivered" for s in status_files(cfg).values()) == 3, WAIT_S,
                     "three delivered status files")
            stop_cleanly(procs)
    finally:
        receiver.close()
    keys = {f"{alert_id_for(e)}/security-desk.{webhook_dest(receiver.url)}" for e in event_ids}
    assert set(receiver.accepted) == keys, "each alert reached the application once"
    assert receiver.repeats == 0
    assert sorted(a.number for a in receiver.attempts) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(a.signed_ok for a in receiver.attempts), "every attempt carries a valid HMAC-SHA256 signature"
    for status in status_files(cfg).values():
        assert status["attempts"] == 3 and status["last_error"].startswith("HTTP 500")
    body = receiver.accepted[sorted(keys)[0]]
    assert body["event_type"] == "intrusion" and body["camera_id"] == "cam-01"
    response = create_app(cfg, testing=True).test_client().get(f"/api/alerts/{alert_id_for(event_ids[0])}")
    assert response.status_code == 200
    (delivery,) = response.get_json()["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["channel"]) == ("delivered", 3, "webhook")


def webhook_dest(url: str) -> str:
    """The destination id of a webhook URL."""
    from image_pipeline.delivery.plan import destination_id
    return destination_id("webhook", url)


def test_email_arrives_with_subject_body_and_the_key_frame_attached(
        pipeline_config: Config, tmp_path: Path, inbox: SmtpInbox) -> None:
    cfg = delivery_config(pipeline_config, (mailbox("security-desk@example.com"),), smtp_port=inbox.port)
    with PipelineProcesses(cfg, tmp_path / "run") as procs:
        start_pipeline(procs)
        (event_id,) = publish_events(cfg, 7, 1)
        wait_for(lambda: inbox.messages, WAIT_S, "the e-mail")
        stop_cleanly(procs)
    (_, mail), = inbox.messages
    alert_id = alert_id_for(event_id)
    assert mail["Subject"] == f"[alert {alert_id}] intrusion on cam-01"
    assert mail["To"] == "security-desk@example.com"
    text = mail.get_body(("plain",))
    assert text is not None and "Someone entered the view of camera cam-01" in text.get_content()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    annotated = cfg.data_dir / f"{cfg.paths.events}/{event_id}_annotated.jpg"
    assert attachment.get_content() == annotated.read_bytes(), "the attachment is the annotated key frame"
    assert mail["X-Idempotency-Key"].startswith(f"{alert_id}/security-desk.email-")


def test_a_webhook_that_never_answers_does_not_delay_email(
        pipeline_config: Config, tmp_path: Path, inbox: SmtpInbox) -> None:
    hanging = WebhookReceiver(script=lambda _key, _n: "hang")
    timeout_s = 10.0
    cfg = delivery_config(pipeline_config, (webhook(hanging.url, timeout_s=timeout_s),
                                            mailbox("security-desk@example.com")), smtp_port=inbox.port)
    try:
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            start_pipeline(procs)
            published = time.monotonic()
            publish_events(cfg, 1, 3, spacing_s=120)
            wait_for(lambda: len(inbox.messages) == 3, WAIT_S, "three e-mails")
            hanging.closing.set()  # the hanging attempt ends now, so the worker stops at once
            stop_cleanly(procs)
    finally:
        hanging.close()
    latencies = [at - published for at, _ in inbox.messages]
    print(f"e-mail latency with a hanging webhook: {', '.join(f'{s:.2f} s' for s in latencies)}")
    assert hanging.attempts, "the webhook was being tried meanwhile"
    # Each alert's webhook delivery is planned before its e-mail. Had the e-mails waited behind the
    # webhook, not even the first could arrive before the first webhook attempt timed out.
    first_timeout = hanging.attempts[0].at + timeout_s
    assert all(at < first_timeout for at, _ in inbox.messages), (latencies, first_timeout - published)


def test_a_storm_of_50_intrusions_gives_one_message_and_the_next_counts_the_rest(
        pipeline_config: Config, tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    cfg = delivery_config(pipeline_config, (webhook(receiver.url),), cooldown_s=60.0)
    try:
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            start_pipeline(procs)
            storm = publish_events(cfg, 1, 50, spacing_s=1.0)  # 50 episodes within 50 s of capture time
            (after,) = publish_events(cfg, 51, 1, start=1_800_000_000.0 + 65)  # the window is over
            wait_for(lambda: (cfg.alerts_dir / f"{after}.json").exists(), WAIT_S, "the alerter to reach the last event")
            wait_for(lambda: len(receiver.accepted) == 2, WAIT_S, "two webhook messages")
            time.sleep(1.0)  # a third message, if the cooldown let one through, would arrive by now
            stop_cleanly(procs)
    finally:
        receiver.close()
    assert len(receiver.attempts) == 2
    first, second = sorted(receiver.accepted.values(), key=lambda b: b["captured_at"])
    assert first["event_id"] == storm[0] and first["grouped_count"] == 0
    assert second["event_id"] == after and second["grouped_count"] == 49
    assert second["grouped"].startswith("and 49 more intrusion alerts on camera cam-01")
    assert second["grouped_event_ids"] == storm[1:]
    held = [json.loads((cfg.alerts_dir / f"{e}.json").read_text())["deliveries"][0]["status"] for e in storm]
    assert held == ["pending"] + ["held"] * 49, "every episode still has its alert record"


def test_a_destination_that_keeps_failing_is_recorded_failed_and_dead_lettered(
        pipeline_config: Config, tmp_path: Path) -> None:
    receiver = WebhookReceiver(script=lambda _key, _n: "500")
    retries = DeliveryConfig(max_attempts=3, max_minutes=1.0, backoff_initial_s=0.1, backoff_max_s=0.2)
    cfg = delivery_config(pipeline_config, (webhook(receiver.url),), retries=retries)
    try:
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            start_pipeline(procs)
            (event_id,) = publish_events(cfg, 3, 1)
            wait_for(lambda: [s["status"] for s in status_files(cfg).values()] == ["failed"], WAIT_S, "a failed status")
            stop_cleanly(procs)
    finally:
        receiver.close()
    assert len(receiver.attempts) == 3 and not receiver.accepted
    (letter,) = [DeadLetter.from_dict(v) for v in topic_values(cfg, cfg.topics.dead_letter.name)]
    assert letter.source_topic == cfg.topics.deliveries.name and letter.client == "image-alert-delivery"
    assert letter.error.startswith("gave up after 3 attempt(s)") and "HTTP 500" in letter.error
    client = create_app(cfg, testing=True).test_client()
    (delivery,) = client.get(f"/api/alerts/{alert_id_for(event_id)}").get_json()["deliveries"]
    assert delivery["status"] == "failed" and "HTTP 500" in delivery["last_error"]
    page = client.get(f"/events/{event_id}").get_data(as_text=True)
    assert 'class="delivery-failed"' in page, "the event viewer shows the delivery status"


def test_kill_9_mid_retry_then_restart_delivers_every_alert(pipeline_config: Config, tmp_path: Path) -> None:
    first_key: list[str] = []

    def script(key: str, n: int) -> str:
        if n == 1:
            return "500"
        if not first_key:  # the first retry of all: hold it while the worker is killed
            first_key.append(key)
            return "hold"
        return "ok"

    receiver = WebhookReceiver(script=script)
    cfg = delivery_config(pipeline_config, (webhook(receiver.url),))
    # The restarted worker joins once the group drops the killed one: after the session timeout.
    cfg = cfg.replace(kafka=dataclasses.replace(cfg.kafka, session_timeout_ms=6000))
    try:
        with PipelineProcesses(cfg, tmp_path / "run") as procs:
            start_pipeline(procs)
            event_ids = publish_events(cfg, 1, 3, spacing_s=120)
            worker = next(c for c in procs.clients if c.role == "delivery")
            assert receiver.held.wait(WAIT_S), "a retry reached the receiver"
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=10)
            receiver.release.set()  # the application takes the held one; the worker never learns it
            procs.start("delivery")
            wait_for(lambda: len(receiver.accepted) == 3
                     and sum(s["status"] == "delivered" for s in status_files(cfg).values()) == 3, WAIT_S,
                     "every alert delivered after the restart")
            codes = procs.stop_all()
    finally:
        receiver.close()
    assert codes["delivery-0"] == -signal.SIGKILL and codes["delivery-1"] == 0 and codes["alerter-0"] == 0, codes
    assert {b["event_id"] for b in receiver.accepted.values()} == set(event_ids), "no alert was lost"
    assert receiver.repeats >= 1, "the held delivery was sent again after the restart and dropped as a repeat"
    print(f"crash: {len(receiver.attempts)} attempts, {receiver.repeats} repeat(s) dropped by the receiver")
