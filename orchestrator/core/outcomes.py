"""What became of one message handed to a channel: values both the store (which records them) and the channels
(which produce them) import, so neither imports the other."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(str, enum.Enum):
    """What happened to one message handed to a channel."""

    SENT = "sent"  # accepted by the peer (SMTP 250, HTTP 2xx, PDF written, task queued)
    TRANSIENT = "transient"  # try again later (SMTP 4xx, HTTP 429/5xx, timeout, refused connection)
    # Not tried: held back by the peer's pace or by a pause it asked for; again after `retry_after`, no attempt
    # spent (a big campaign paced by one provider for hours must not use up its tries).
    DEFERRED = "deferred"
    PERMANENT = "permanent"  # never retry (SMTP 5xx, HTTP 4xx, invalid number or address)
    ABANDONED = "abandoned"  # not handed over: another worker owns the message now (lease lost)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The channel's answer for one message."""

    message_id: int
    outcome: Outcome
    detail: str = ""  # peer reply in plain words: "250 OK", "429 Too Many Requests", "numéro invalide"
    provider_id: str = ""  # the peer's own id when it gives one
    retry_after: float | None = None  # seconds, when the peer said so
