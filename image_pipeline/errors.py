"""Error classes shared by the stages: which failures are bad input and which are fatal."""

from __future__ import annotations


class BadInputError(Exception):
    """An input that can never be processed; it goes to the dead-letter topic and the client goes on."""


class FatalError(Exception):
    """A failure of this client's environment (disk full, read-only folder, Kafka gone for good).

    The client stops without committing, so that a restart redoes the work.
    """


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the key."""
