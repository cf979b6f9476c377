"""The channel protocol: what the dispatcher needs from every way a message leaves.

The consumer (orchestrator.app.dispatch) owns this small interface; each channel is one module
that implements it and registers itself by name. Channels never render: they receive
messages whose subject and body are already final text (or a file, for letters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.core.outcomes import SendResult


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A rendered message ready to leave: everything a channel needs, nothing more."""

    message_id: int  # outbox row id
    channel: str
    recipient: str  # e-mail address, E.164 number, postal block (lines joined by "\n"), webhook URL
    body: str
    subject: str = ""
    html_body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    rfc_message_id: str = ""  # stable Message-ID, the same on every retry (dedup at the peer)
    meta: dict[str, Any] = field(default_factory=dict)  # campaign, business, siret... for manifests and webhooks
    # Who speaks: the campaign's own words from its spec ({"sender": {...}, "owner": {...}}), for the From of an
    # e-mail, the signature of a letter, the voice of a digest. Filled by the dispatcher; empty: the defaults.
    campaign: dict[str, Any] = field(default_factory=dict)
    # What the store knew at send time that this message's channel needs (a call's consent and past attempts:
    # `integrations.call_task.CallFacts`; a relay's intermediary: `integrations.relay.Intermediary`). Gathered
    # for the batch by the dispatcher: channels receive values, never the store.
    facts: Any = None


# Called by a channel just before the point of no return of one message (for SMTP: before the final
# "." of DATA). The dispatcher records the send there; if it returns False (the lease was lost to
# another worker), the channel must abandon that message without handing it over.
Handoff = Callable[[int], bool]

# Called by a channel with a handoff point as soon as the peer answered one message handed over (SMTP 250 after
# the ".", HTTP 2xx): the dispatcher records it with the next handoff, so a crash later in the batch leaves only
# the messages truly in flight `unknown`, not the whole batch.
Answer = Callable[[SendResult], None]


def answered(result: SendResult, on_answer: Answer | None) -> SendResult:
    """Tell `on_answer` (when given) about `result`, and return it."""
    if on_answer is not None:
        on_answer(result)
    return result


class Channel(Protocol):
    """One way a message leaves Déclic."""

    name: str

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Send a batch; one result per message, in order. Never raises for a single bad message."""
        ...

    def close(self) -> None:
        """Release connections and flush files."""
        ...


# A factory is called `factory(settings, clock=...)` by the composition root. No channel gets the store: what
# it reads comes in the batch (`OutgoingMessage.campaign`, `.facts`), what it must keep goes back in its
# results (`SendResult.address_refused`, `.record`), written by the dispatcher with the outcome.
ChannelFactory = Callable[..., Channel]
_REGISTRY: dict[str, ChannelFactory] = {}


def register(name: str, factory: ChannelFactory) -> None:
    """Register a channel factory under a unique name (a duplicate name is refused)."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"channel {name!r} is already registered")
    _REGISTRY[name] = factory


def factory_for(name: str) -> ChannelFactory:
    """The factory registered under `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown channel {name!r} (known: {known})") from None


def registered() -> list[str]:
    """Names of the registered channels."""
    return sorted(_REGISTRY)
