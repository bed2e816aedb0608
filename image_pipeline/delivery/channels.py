"""The network half of delivery: one HTTP POST, one SMTP session. Each call is bounded by a timeout.

A failure is a DeliveryFailure saying whether retrying can help. Permanent: an HTTP 4xx other than
408 and 429 (the receiver refuses this request as it is), an SMTP 5xx (the server refuses the
mail or the recipient). Everything else (refused connections, timeouts, 5xx, 408, 429, SMTP 4xx)
is retried by the worker with backoff.
"""

from __future__ import annotations

import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage

from image_pipeline.delivery.settings import SmtpConfig

RETRYABLE_HTTP = frozenset({408, 429})


class DeliveryFailure(Exception):
    """One attempt failed; `permanent` says that retrying cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: a signed alert is never re-sent to another host."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def post_webhook(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST the body; returns the 2xx status, or raises DeliveryFailure."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
            response.read(65_536)  # let the receiver finish; its answer is not used
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
        permanent = 400 <= code < 500 and code not in RETRYABLE_HTTP
        raise DeliveryFailure(f"HTTP {code} {exc.reason}", permanent) from None
    except TimeoutError:
        raise DeliveryFailure(f"no answer within {timeout_s:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryFailure(f"no answer within {timeout_s:g} s") from None
        raise DeliveryFailure(f"cannot connect: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # reset connections, bad status lines
        raise DeliveryFailure(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= status < 300:
        raise DeliveryFailure(f"HTTP {status}", 400 <= status < 500 and status not in RETRYABLE_HTTP)
    return status


def send_email(smtp: SmtpConfig, password: str | None, message: EmailMessage) -> None:
    """Hand the mail to the SMTP server (STARTTLS and login when configured), or raise DeliveryFailure."""
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, password or "")
            refused = client.send_message(message)
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryFailure(f"SMTP {exc.smtp_code} {text}", exc.smtp_code >= 500) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailure(f"recipient refused: {exc.recipients}", True) from None
    except TimeoutError:
        raise DeliveryFailure(f"SMTP server did not answer within {smtp.timeout_s:g} s") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailure(f"SMTP {type(exc).__name__}: {exc}") from None
    if refused:
        raise DeliveryFailure(f"recipient refused: {sorted(refused)}", True)
