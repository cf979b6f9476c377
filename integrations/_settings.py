"""Reading a channel's settings from the composition root's settings object.

The channels do not import the application's `Settings` (integrations/ sits below orchestrator.app): they read
attributes of the object the root passes. Every name a channel reads is a declared field of that object's class
when it has declared fields (pydantic-settings reads and types its `DECLIC_<NAME>` environment variable; a test
checks the names against orchestrator/app/settings.py); a field left unset (None) means the channel's own
default. A stand-in object (`SimpleNamespace`, in tests and scripts) is read as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from integrations.base import Answer, Handoff, OutgoingMessage
from orchestrator.core.outcomes import Outcome, SendResult


def secret_text(value: Any) -> Any:
    """The text of a secret setting (pydantic's SecretStr), or the value itself (a plain string, None)."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """`settings.<name>`, else `default` (a field left unset means the channel's own default); a secret
    (SecretStr) comes back as its text, which the channel alone holds."""
    declared = getattr(type(settings), "model_fields", None)
    if declared is not None and name not in declared:
        raise AttributeError(f"{name} is not a declared Settings field (orchestrator/app/settings.py)")
    value = secret_text(getattr(settings, name, None))
    return default if value is None else value


def no_clock() -> dt.datetime:
    """The clock of a channel built without one (`declic status` only checks its settings): it never reads the wall
    clock behind the composition root's back, it says so."""
    raise RuntimeError("a channel built without a clock was asked the time: build it from the App (bootstrap)")


class UnconfiguredChannel:
    """Stands in for a channel whose settings are missing: every message waits (TRANSIENT) with the reason.

    Building the real channel would raise, and one missing SMS key must not stop the e-mails of the same
    dispatch; the messages stay in the outbox, retried with backoff, until the operator sets the key.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Answer every message TRANSIENT with the configuration problem."""
        detail = f"canal « {self.name} » non configuré : {self.reason}"
        return [SendResult(message.message_id, Outcome.TRANSIENT, detail) for message in batch]

    def close(self) -> None:
        """Nothing to release."""
