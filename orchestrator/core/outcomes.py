"""What became of a message: values both the store (which records them) and the channels (which produce them)
import, so neither imports the other. The channel's answer when it sends (`SendResult`), and what comes back
later from the peers (`InboundReply`, `DeliveryReceipt`, `Bounce`)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    # The peer refused the address itself for good (SMTP 550 5.1.1 in the dialogue): never write to it again,
    # as after a bounce report. The dispatcher records the opt-out with the outcome.
    address_refused: bool = False
    # A send that is itself a row the store keeps (a call task to queue: its columns), written by the
    # dispatcher in the transaction that records the outcome.
    record: Mapping[str, Any] | None = None


# --- what comes back later: replies, delivery receipts, bounces (parsed by the channels, recorded by the store) ---


@dataclass(frozen=True, slots=True)
class InboundReply:
    """One SMS received from a person: a reply, or an opt-out."""

    number: str  # E.164
    text: str
    received_at: dt.datetime | None = None
    reference: str = ""  # our rfc_message_id (generic) or the provider's ticket (Octopush)
    is_stop: bool = False  # the person asked to receive nothing more


# What a provider's delivery status means for Déclic.
DELIVERED = "delivered"  # on the phone
UNDELIVERED = "undelivered"  # the operator gave up (phone off for days...): not retried, not suppressed
INVALID = "invalid"  # the number does not exist: never again
OPTED_OUT = "opted_out"  # the number is on the provider's STOP list: a global opt-out for us too
PENDING = "pending"  # accepted by the first carrier only


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A provider's word on one SMS after it was accepted."""

    reference: str  # our reference (generic) or the provider's ticket (Octopush): matches the outbox row
    state: str  # delivered | undelivered | invalid | opted_out | pending
    provider_status: str
    number: str = ""
    at: dt.datetime | None = None


HARD = "hard"
SOFT = "soft"


@dataclass(frozen=True, slots=True)
class Bounce:
    """One recipient's fate in a delivery status notification."""

    recipient: str  # lower-case address
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # enhanced status code, "5.1.1"
    kind: str  # hard | soft (only meaningful when action is failed or delayed)
    diagnostic: str = ""  # the remote server's own words
    original_message_id: str = ""
    outbox_id: int | None = None

    @property
    def is_hard(self) -> bool:
        """True when the address must never be written to again."""
        return self.action == "failed" and self.kind == HARD
