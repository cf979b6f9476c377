"""Reading a channel's settings from the composition root's `Settings` object.

Every name a channel reads is a declared `Settings` field, so pydantic-settings reads and types its
`DECLIC_<NAME>` environment variable; a field left unset (None) means the channel's own default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integrations.base import Answer, Handoff, OutgoingMessage
from orchestrator.app.settings import Settings, reveal
from orchestrator.core.outcomes import Outcome, SendResult


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """`settings.<name>`, else `default` (a field left unset means the channel's own default); a secret
    (SecretStr) comes back as its text, which the channel alone holds."""
    if name not in Settings.model_fields:
        raise AttributeError(f"{name} is not a declared Settings field (orchestrator/app/settings.py)")
    value = reveal(getattr(settings, name, None))
    return default if value is None else value


def store_engine(settings: Any, engine: Any = None) -> Any:
    """The composition root's engine when it passes one; else (a channel built alone: tests, scripts) the
    process-wide engine of the settings' store, None when the settings name no store."""
    if engine is not None:
        return engine
    url = getattr(settings, "resolved_database_url", None) or setting(settings, "database_url")
    if not url:
        return None
    from store.db import get_engine  # the store's engine cache; lazy so the channels load without it

    return get_engine(url)


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
