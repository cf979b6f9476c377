"""The `relay` channel: a business's intermediary (its accounting firm, a CMA/CCI or bank adviser, an association)
hears of it in a digest, instead of (or before) the business being written to directly (issue 16, point 1).

Like every channel it never renders a message: the dispatcher hands it messages already rendered from
`templates/messages/relay/<trigger>/` (the part about one client), addressed to the intermediary's e-mail (the
planner's recipient of a relay step, `store.intermediaries.relays_for`). What it does:

- it groups the batch by intermediary, so every client due for one intermediary leaves in ONE e-mail;
- it puts the parts in the digest frame (`templates/messages/relay/_digest.j2`), each followed by three signed
  one-click links ("je m'en occupe", "déjà fait", "pas concerné": `/i/<token>/<answer>`, `web.relay`);
- it sends each digest through the e-mail channel (the `DECLIC_SMTP_*` settings, the campaign's sender when the
  digest holds one campaign), and every message of a digest gets the digest's outcome (sent, retry, failed).

What it knows of the intermediary (its name and kind, for the greeting) and of each campaign (the name of its
sender) comes on the messages, gathered by the dispatcher (`OutgoingMessage.facts`: an `Intermediary`;
`OutgoingMessage.campaign`); an address the registry does not know is greeted by the address itself.

Cadence: a digest gathers what is due when the dispatcher runs. When each client falls due is the campaign step's
business: its `delay` after the trigger, inside the trade's send windows (`timing`) and caps, like any step. A
monthly digest is a relay step whose trigger is monthly (a schedule), or one run of `declic dispatch` a month for a
store that only relays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from jinja2 import TemplateError

from integrations.base import Answer, Handoff, OutgoingMessage, register
from integrations.email_smtp import SmtpChannel
from orchestrator.core.links import make_token
from orchestrator.core.outcomes import Outcome, SendResult
from templates.render import library, tidy

DIGEST_TEMPLATE = "relay/_digest.j2"
ANSWER_WORDS = ("occupe", "fait", "pas-concerne")  # the last part of each answer link (`store.intermediaries.ANSWERS`)


@dataclass(frozen=True, slots=True)
class Intermediary:
    """Who a digest greets: the intermediary's name and kind, from the registry (`store.intermediaries`)."""

    name: str
    kind: str = ""


def answer_links(secret: str, base_url: str, message_id: int, now: dt.datetime) -> dict[str, str]:
    """The three one-click answers about the client of one relay message (one signed token at `now`, three
    words)."""
    token = make_token(secret, "a", message_id, now=now)
    base = base_url.rstrip("/")
    return {word: f"{base}/i/{token}/{word}" for word in ANSWER_WORDS}


class RelayChannel:
    """One digest e-mail per intermediary for the relay messages of a batch."""

    name = "relay"

    def __init__(self, settings: Any, *, clock: Any = None, email: Any = None) -> None:
        self.settings, self.clock = settings, clock
        self._email = email

    @classmethod
    def from_settings(cls, settings: Any, clock: Any = None) -> RelayChannel:
        return cls(settings, clock=clock)

    @property
    def email(self):
        """The e-mail channel the digests leave through (built on first use from the same settings)."""
        if self._email is None:
            self._email = SmtpChannel.from_settings(self.settings, clock=self.clock)
        return self._email

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Group by intermediary, send one digest each; every message gets its digest's outcome, in order."""
        groups: dict[str, list[OutgoingMessage]] = {}
        results: dict[int, SendResult] = {}
        for msg in batch:
            address = msg.recipient.strip().lower()
            if not address or "@" not in address:
                results[msg.message_id] = SendResult(msg.message_id, Outcome.PERMANENT,
                                                     "pas d'e-mail d'intermédiaire pour ce message")
            else:
                groups.setdefault(address, []).append(msg)
        if groups:
            try:
                digests, members = self._digests(groups)
            except TemplateError as exc:  # the digest frame does not render: the batch waits, nothing leaves
                digests, members = [], {}
                for msgs in groups.values():
                    for m in msgs:
                        results[m.message_id] = SendResult(m.message_id, Outcome.TRANSIENT,
                                                           f"synthèse impossible à préparer : {exc}")

            def handoff(first_id: int) -> bool:
                # Every message of the digest is recorded as handed over before the digest leaves.
                answers = [on_handoff(m.message_id) for m in members[first_id]] if on_handoff else [True]
                return all(answers)

            def answer(result: SendResult) -> None:
                if on_answer is not None:
                    for m in members.get(result.message_id, ()):
                        on_answer(replace(result, message_id=m.message_id))

            if digests:
                sent = self.email.send(digests, on_handoff=handoff if on_handoff else None,
                                       on_answer=answer if on_answer else None)
                for result in sent:
                    for m in members[result.message_id]:
                        results[m.message_id] = replace(result, message_id=m.message_id)
        return [results[m.message_id] for m in batch]

    def _digests(self, groups: dict[str, list[OutgoingMessage]]
                 ) -> tuple[list[OutgoingMessage], dict[int, list[OutgoingMessage]]]:
        voices = {m.meta.get("campaign_id"): m.campaign for msgs in groups.values() for m in msgs if m.campaign}
        speakers = {cid: (words.get("sender") or {}).get("name") or "" for cid, words in voices.items()}
        template = library().template(DIGEST_TEMPLATE)
        host = urlparse(self.settings.base_url).hostname or "declic.local"
        secret, now = self.settings.resolved_secret, self.clock()  # the composition root's clock
        digests, members = [], {}
        for address, msgs in groups.items():
            person = next((m.facts for m in msgs if isinstance(m.facts, Intermediary)), None)
            campaigns = {m.meta.get("campaign_id") for m in msgs}
            senders = sorted({speakers.get(m.meta.get("campaign_id"), "") for m in msgs} - {""})
            context = {
                "intermediary": {"name": person.name if person else address, "kind": person.kind if person else ""},
                "count": len(msgs),
                "senders": " et ".join(senders) or "Déclic",
                "items": [{"body": m.body.strip(), "answers": answer_links(secret, self.settings.base_url,
                                                                          m.message_id, now)} for m in msgs],
            }
            ctx = template.new_context(context)
            subject = tidy("".join(template.blocks["subject"](ctx))).strip()
            body = tidy("".join(template.blocks["body"](ctx))).strip() + "\n"
            first = msgs[0].message_id
            campaign_id = campaigns.pop() if len(campaigns) == 1 else None
            digests.append(OutgoingMessage(
                message_id=first, channel="email", recipient=address, subject=subject, body=body,
                rfc_message_id=f"<declic.relay.{first}.{len(msgs)}@{host}>",
                meta={"campaign_id": campaign_id, "relay": len(msgs)},
                campaign=voices.get(campaign_id, {}) if campaign_id is not None else {}))
            members[first] = msgs
        return digests, members

    def close(self) -> None:
        if self._email is not None:
            self._email.close()
            self._email = None


register("relay", RelayChannel.from_settings)
