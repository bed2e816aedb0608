"""The network half of delivery against real servers on loopback, without Kafka: HTTP answers, SMTP, rate cap."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from image_pipeline.config import load_config
from image_pipeline.delivery.channels import DeliveryFailure, post_webhook, send_email
from image_pipeline.delivery.lanes import Job, Lane, Outcome, destinations, make_sender
from image_pipeline.delivery.payload import email_message
from image_pipeline.delivery.settings import SmtpConfig
from tests.delivery_support import SmtpInbox, WebhookReceiver, delivery_config, free_port, wait_for, webhook
from tests.test_delivery_plan import delivery


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    """A real SMTP server on loopback."""
    server = SmtpInbox()
    yield server
    server.close()


@pytest.mark.parametrize(("answer", "permanent"), [("500", False), ("429", False), ("404", True)])
def test_http_errors_are_retried_unless_the_receiver_refuses_the_request(answer: str, permanent: bool) -> None:
    receiver = WebhookReceiver(script=lambda _key, _n: answer)
    try:
        with pytest.raises(DeliveryFailure, match=f"HTTP {answer}") as failure:
            post_webhook(receiver.url, b"{}", {"Idempotency-Key": "k"}, timeout_s=5)
    finally:
        receiver.close()
    assert failure.value.permanent is permanent


def test_a_webhook_that_never_answers_fails_after_its_timeout() -> None:
    receiver = WebhookReceiver(script=lambda _key, _n: "hang")
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryFailure, match=r"no answer within 0\.5 s") as failure:
            post_webhook(receiver.url, b"{}", {}, timeout_s=0.5)
    finally:
        receiver.close()
    assert 0.4 < time.monotonic() - started < 3 and not failure.value.permanent


def test_a_refused_connection_is_retried() -> None:
    with pytest.raises(DeliveryFailure, match="cannot connect") as failure:
        post_webhook(f"http://127.0.0.1:{free_port()}/hook", b"{}", {}, timeout_s=2)
    assert not failure.value.permanent


def test_send_email_hands_the_mail_to_a_real_smtp_server(inbox: SmtpInbox) -> None:
    message = email_message(delivery(channel="email", target="desk@example.com"), "pipeline@example.com",
                            b"\xff\xd8jpeg", now=0.0)
    send_email(SmtpConfig(port=inbox.port, timeout_s=5), None, message)
    (_, received), = inbox.messages
    assert received["Subject"] == message["Subject"] and received["X-Idempotency-Key"] == message["X-Idempotency-Key"]


def test_an_smtp_server_that_is_down_is_retried() -> None:
    message = email_message(delivery(channel="email", target="desk@example.com"), "p@example.com", None, 0.0)
    with pytest.raises(DeliveryFailure, match="SMTP") as failure:
        send_email(SmtpConfig(port=free_port(), timeout_s=2), None, message)
    assert not failure.value.permanent


def test_the_rate_cap_holds_back_deliveries_to_one_destination(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    cfg = delivery_config(load_config(env={}).with_overrides(data_dir=str(tmp_path)),
                          (webhook(receiver.url, rate_per_minute=2),))
    (dest,) = destinations(cfg).values()
    outcomes: queue.Queue[Outcome] = queue.Queue()
    stop = threading.Event()
    lane = Lane(cfg, dest, make_sender(cfg, dest, {}), outcomes, stop)
    lane.start()
    try:
        for i in range(4):
            key = f"A-0000000{i}/security-desk.{dest.destination_id}"
            message = delivery(idempotency_key=key, alert_id=f"A-0000000{i}", destination=dest.destination_id,
                               alertee=f"security-desk.{dest.destination_id}", target=receiver.url)
            lane.submit(Job(message, None, [("p", i)]))
        wait_for(lambda: outcomes.qsize() == 2, 10, "the first two deliveries")
        time.sleep(1.0)  # a third would be sent now if the cap did not hold it back for 30 s
        assert len(receiver.attempts) == 2 and lane.queued() == 2
    finally:
        stop.set()
        lane.join(timeout=10)
        receiver.close()
    statuses = sorted(p.parent.name for p in (cfg.alerts_dir / "deliveries").glob("*/*.json"))
    assert statuses == ["A-00000000", "A-00000001"]


def test_a_missing_webhook_secret_fails_for_good_with_a_clear_reason(tmp_path: Path) -> None:
    cfg = delivery_config(load_config(env={}).with_overrides(data_dir=str(tmp_path)),
                          (webhook("http://127.0.0.1:9/hook", "NOT_SET_ANYWHERE"),))
    (dest,) = destinations(cfg).values()
    send = make_sender(dataclasses.replace(cfg), dest, {})
    with pytest.raises(DeliveryFailure, match="secret NOT_SET_ANYWHERE is not set") as failure:
        send(delivery())
    assert failure.value.permanent
