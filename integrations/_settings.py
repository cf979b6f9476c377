"""Reading a channel's settings from the composition root's `Settings` object.

The channels' own fields (`sms_url`, `letter_dir`...) may not be declared on `Settings` yet; until they
are, the same `DECLIC_*` environment variable is read directly so a deployment configured by
environment works either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from integrations.base import Handoff, Outcome, OutgoingMessage, SendResult


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """`settings.<name>`, else the environment variable `DECLIC_<NAME>`, else `default`."""
    value = getattr(settings, name, None)
    if value is not None:
        return value
    env = os.environ.get(f"DECLIC_{name.upper()}")
    if env is None or env == "":
        return default
    if isinstance(default, bool):
        return env.strip().lower() in {"1", "true", "yes", "on", "oui"}
    if isinstance(default, int):
        return int(env)
    if isinstance(default, float):
        return float(env)
    return env


class UnconfiguredChannel:
    """Stands in for a channel whose settings are missing: every message waits (TRANSIENT) with the reason.

    Building the real channel would raise, and one missing SMS key must not stop the e-mails of the same
    dispatch; the messages stay in the outbox, retried with backoff, until the operator sets the key.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None) -> list[SendResult]:
        """Answer every message TRANSIENT with the configuration problem."""
        detail = f"canal « {self.name} » non configuré : {self.reason}"
        return [SendResult(message.message_id, Outcome.TRANSIENT, detail) for message in batch]

    def close(self) -> None:
        """Nothing to release."""
