"""What a delivery sends, built without I/O: the webhook body and its HMAC signature, and the e-mail.

The webhook signature is HMAC-SHA256 over "<timestamp>.<body>" (the Stripe and Slack scheme): the
timestamp lets a receiver refuse an old request replayed by someone else, the body cannot be altered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from image_pipeline.delivery.plan import grouped_text
from image_pipeline.messages import DeliveryMessage

SIGNATURE_HEADER = "X-Pipeline-Signature"  # "sha256=<hex>"
TIMESTAMP_HEADER = "X-Pipeline-Timestamp"  # epoch seconds, part of what is signed
IDEMPOTENCY_HEADER = "Idempotency-Key"


def alert_body(delivery: DeliveryMessage) -> dict[str, Any]:
    """The alert as a receiver sees it: the alert's facts, the grouping, and the idempotency key."""
    return {
        "idempotency_key": delivery.idempotency_key,
        "alert_id": delivery.alert_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "camera_id": delivery.camera_id,
        "score": delivery.score,
        "summary": delivery.summary,
        "subscription": delivery.subscription,
        "captured_at": delivery.captured_at,
        "alerted_at": delivery.alerted_at,
        "grouped_count": delivery.grouped_count,
        "grouped_event_ids": delivery.grouped_event_ids,
        "grouped": grouped_text(delivery.grouped_count, delivery.event_type, delivery.camera_id),
    }


def webhook_body(delivery: DeliveryMessage) -> bytes:
    """The POST body: compact JSON with sorted keys, so one delivery always gives the same bytes."""
    return json.dumps(alert_body(delivery), sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: 'sha256=' and the hex HMAC-SHA256 of '<timestamp>.<body>'."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def webhook_headers(delivery: DeliveryMessage, body: bytes, secret: str | None, now: float) -> dict[str, str]:
    """Content type, idempotency key, and the signature when the destination has a secret."""
    headers = {"Content-Type": "application/json", "User-Agent": "image-pipeline-alerts/1",
               IDEMPOTENCY_HEADER: delivery.idempotency_key}
    if secret:
        timestamp = str(int(now))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return headers


def email_subject(delivery: DeliveryMessage) -> str:
    """'[alert A-3f9c2b1e] intrusion on cam-01 (and 7 more)'."""
    more = f" (and {delivery.grouped_count} more)" if delivery.grouped_count else ""
    return f"[alert {delivery.alert_id}] {delivery.event_type} on {delivery.camera_id}{more}"


def email_text(delivery: DeliveryMessage) -> str:
    """The plain-text body."""
    captured = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(delivery.captured_at))
    lines = [
        delivery.summary,
        "",
        f"Alert:    {delivery.alert_id}",
        f"Event:    {delivery.event_id} ({delivery.event_type}, score {delivery.score:.2f})",
        f"Camera:   {delivery.camera_id}",
        f"Captured: {captured}",
        f"For:      {delivery.subscription}",
    ]
    more = grouped_text(delivery.grouped_count, delivery.event_type, delivery.camera_id)
    if more:
        lines += ["", more.capitalize() + ":", *(f"  {e}" for e in delivery.grouped_event_ids)]
    lines += ["", f"Idempotency key: {delivery.idempotency_key}"]
    return "\n".join(lines) + "\n"


def email_message(delivery: DeliveryMessage, sender: str, key_frame: bytes | None, now: float) -> EmailMessage:
    """The e-mail, with the annotated key frame attached when it could be read.

    Its Message-ID derives from the idempotency key, so a mail system can drop a repeat too.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = delivery.target
    msg["Subject"] = email_subject(delivery)
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = f"<{hashlib.sha1(delivery.idempotency_key.encode()).hexdigest()}@image-pipeline>"
    msg["X-Idempotency-Key"] = delivery.idempotency_key
    text = email_text(delivery)
    if key_frame is None:
        text += "\n(The key frame could not be read; it is in the event viewer.)\n"
    msg.set_content(text)
    if key_frame is not None:
        msg.add_attachment(key_frame, maintype="image", subtype="jpeg", filename=f"{delivery.event_id}.jpg")
    return msg
