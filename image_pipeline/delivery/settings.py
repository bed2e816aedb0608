"""Config of alert delivery: the channels of a subscription, the SMTP server, and the retry policy.

config.py builds these from config.yaml with its generic loader and calls check_delivery() to
validate them. Secrets are never config values: a channel names an environment variable (or a key
of the secrets file), and secret() reads it when a delivery needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from image_pipeline.storage import brief_repr

if TYPE_CHECKING:
    from image_pipeline.config import Config, Subscription

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_ADDRESS = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,190}")


class SettingsError(ValueError):
    """A delivery setting is wrong; config.py turns it into a ConfigError naming the key."""


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    secret_env: str = ""  # the variable (or secrets-file key) holding the HMAC key; "" sends unsigned
    timeout_s: float = 5.0
    rate_per_minute: int = 30


@dataclass(frozen=True)
class EmailChannel:
    to: str
    rate_per_minute: int = 10


@dataclass(frozen=True)
class FileChannel:
    """Today's record: the alert file lists the alertee; nothing is sent."""


@dataclass(frozen=True)
class Notify:
    """One entry of a subscription's `notify` list: exactly one channel."""

    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None
    file: FileChannel | None = None

    def channel(self) -> str:
        """The channel's name."""
        return "webhook" if self.webhook else "email" if self.email else "file"


@dataclass(frozen=True)
class SmtpConfig:
    # `from` is a Python keyword; config.yaml says `from`, the field is `sender`.
    ALIASES: ClassVar[dict[str, str]] = {"from": "sender"}
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "pipeline@example.com"
    starttls: bool = False
    username: str = ""  # log in only when set; the password comes from password_env
    password_env: str = "SMTP_PASSWORD"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 8  # give up after this many attempts ...
    max_minutes: float = 30.0  # ... or this long after the first one, whichever comes first
    backoff_initial_s: float = 2.0  # the wait after the first failure; doubled after each further one
    backoff_max_s: float = 300.0
    jitter: float = 0.5  # each wait is shortened by a random fraction of up to this much
    secrets_file: str = ""  # KEY=VALUE lines, read when a variable is not in the environment
    max_in_flight: int = 1000  # deliveries read from Kafka and not yet finished, before reading pauses


def _check_range(where: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{where}: must be between {low:g} and {high:g}, got {brief_repr(value)}")


def _check_env_name(where: str, value: str, empty: bool) -> None:
    if (value or not empty) and not _ENV_NAME.fullmatch(value):
        raise SettingsError(f"{where}: must be an environment variable name, got {brief_repr(value)}")


def _check_notify(where: str, item: Notify) -> None:
    chosen = [c for c in (item.webhook, item.email, item.file) if c is not None]
    if len(chosen) != 1:
        raise SettingsError(f"{where}: must name exactly one channel (webhook, email or file), got {len(chosen)}")
    if item.webhook is not None:
        hook = item.webhook
        parts = urlsplit(hook.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(hook.url) > 2000:
            raise SettingsError(f"{where}.webhook.url: must be an http(s) URL, got {brief_repr(hook.url)}")
        _check_env_name(f"{where}.webhook.secret_env", hook.secret_env, empty=True)
        _check_range(f"{where}.webhook.timeout_s", hook.timeout_s, 0.1, 300)
        _check_range(f"{where}.webhook.rate_per_minute", hook.rate_per_minute, 1, 100_000)
    if item.email is not None:
        if not _ADDRESS.fullmatch(item.email.to):
            raise SettingsError(f"{where}.email.to: must be one e-mail address, got {brief_repr(item.email.to)}")
        _check_range(f"{where}.email.rate_per_minute", item.email.rate_per_minute, 1, 100_000)


def check_subscription_delivery(where: str, sub: Subscription) -> None:
    """A subscription's channels and cooldown."""
    _check_range(f"{where}.cooldown_s", sub.cooldown_s, 0, 86_400)
    for i, item in enumerate(sub.notify):
        _check_notify(f"{where}.notify[{i}]", item)


def check_delivery(cfg: Config) -> None:
    """The SMTP server, the retry policy and every subscription's channels; raises SettingsError."""
    smtp, d = cfg.smtp, cfg.delivery
    if not smtp.host.strip():
        raise SettingsError("smtp.host: must not be empty")
    _check_range("smtp.port", smtp.port, 1, 65_535)
    if not _ADDRESS.fullmatch(smtp.sender):
        raise SettingsError(f"smtp.from: must be one e-mail address, got {brief_repr(smtp.sender)}")
    _check_env_name("smtp.password_env", smtp.password_env, empty=False)
    _check_range("smtp.timeout_s", smtp.timeout_s, 0.1, 300)
    _check_range("delivery.max_attempts", d.max_attempts, 1, 1000)
    _check_range("delivery.max_minutes", d.max_minutes, 0.01, 7 * 24 * 60)
    _check_range("delivery.backoff_initial_s", d.backoff_initial_s, 0.01, 3600)
    _check_range("delivery.backoff_max_s", d.backoff_max_s, d.backoff_initial_s, 86_400)
    _check_range("delivery.jitter", d.jitter, 0, 1)
    _check_range("delivery.max_in_flight", d.max_in_flight, 1, 1_000_000)
    for i, sub in enumerate(cfg.subscriptions):
        check_subscription_delivery(f"subscriptions[{i}]", sub)


def read_secrets_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines of a secrets file (blank lines and # comments skipped); {} without a file."""
    if not path:
        return {}
    found: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def secrets_path(cfg: Config) -> str:
    """The secrets file, relative to the config file's folder like the data paths; "" for none."""
    file = cfg.delivery.secrets_file
    return str(Path(cfg.base_dir) / file) if file else ""


def secret(name: str, env: dict[str, str], secrets_file: str) -> str | None:
    """A secret by name: the environment first, then the secrets file; None when neither has it."""
    if not name:
        return None
    if name in env:
        return env[name]
    try:
        return read_secrets_file(secrets_file).get(name)
    except OSError:
        return None
