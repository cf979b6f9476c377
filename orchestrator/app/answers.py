"""What people answer from the links of a message, recorded: the owner's unsubscribe, clicks (the message's link or
its short code), "ne plus m'appeler", "ce n'est pas pour moi" and its tool question, the self-diagnostic; an
intermediary's answer about a client of a relay digest. Each answer is one unit of work at the App's clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestrator.app.bootstrap import App
from orchestrator.core.campaign_spec import CampaignSpec
from store.conversions import message_row, record_diagnostic, record_interaction
from store.intermediaries import record_answer
from store.not_for_me import Answered, answer_not_for_me, campaign_spec, record_tool_answer
from store.privacy import withdraw_consents
from store.suppressions import unsubscribe_message


def unsubscribe(app: App, message_id: int) -> bool:
    """Opt out the recipient of message `message_id`; False when the message is unknown."""
    with app.transaction() as unit:
        return unsubscribe_message(unit.conn, message_id, now=unit.now)


def click(app: App, message_id: int) -> bool:
    """Record a click on the link of message `message_id`; False when the message is unknown."""
    with app.transaction() as unit:
        msg = message_row(unit.conn, message_id)
        if msg is None:
            return False
        record_interaction(unit.conn, msg, "click", at=unit.now)
    return True


def short_click(app: App, message_id: int, max_age: dt.timedelta, to: str | None = None) -> bool:
    """Record a click on the short code of message `message_id` (`to`: where it leads, "diagnostic"); False when
    the message is unknown, never left, or left longer ago than `max_age` (a code that old is refused)."""
    with app.transaction() as unit:
        msg = message_row(unit.conn, message_id)
        if msg is None or msg.sent_at is None:
            return False
        sent = msg.sent_at if msg.sent_at.tzinfo else msg.sent_at.replace(tzinfo=dt.UTC)  # SQLite: naive UTC
        if unit.now - sent > max_age:
            return False
        record_interaction(unit.conn, msg, "click", {"via": "short", **({"to": to} if to else {})}, at=unit.now)
    return True


def stop_calls(app: App, msg, source: str) -> None:
    """ "Ne plus m'appeler": withdraw every call and SMS consent of the business of `msg`."""
    if msg.business_id is None:
        return
    with app.transaction() as unit:
        for purpose in ("call", "sms"):
            withdraw_consents(unit.conn, business_id=msg.business_id, owner=None, purpose=purpose, source=source,
                              at=unit.now)


def not_for_me(app: App, msg, reason: str, *, detail: str, months: int | None) -> Answered:
    """ "Ce n'est pas pour moi": keep the reason and apply what the campaign says it does (`store.not_for_me`)."""
    with app.transaction() as unit:
        return answer_not_for_me(unit.conn, msg, reason, detail=detail, months=months, now=unit.now, zone=unit.zone)


def tool_answer(app: App, msg, category: str) -> bool:
    """ "Déjà équipé": the tool the owner uses, as one `tool_adopted` of that category (once per message)."""
    with app.transaction() as unit:
        return record_tool_answer(unit.conn, msg, category, now=unit.now)


def diagnostic(app: App, msg, *, score: int, data: dict[str, Any]) -> None:
    """Store the self-diagnostic's answers and levels, and count the conversion."""
    with app.transaction() as unit:
        record_diagnostic(unit.conn, msg, score=score, data=data, now=unit.now)


def relay_answer(app: App, msg, answer: str) -> bool:
    """An intermediary's answer about the client of relay message `msg`; False when already given."""
    with app.transaction() as unit:
        return record_answer(unit.conn, msg, answer, at=unit.now)


def spec_of(app: App, campaign_id: int | None) -> CampaignSpec | None:
    """The campaign's spec as the owner's page shows it (its privacy notice), None when it no longer reads."""
    with app.engine.connect() as conn:
        return campaign_spec(conn, campaign_id)


def message(app: App, message_id: int):
    """The message behind a link (its row: context, channel, business, campaign), None when unknown."""
    with app.engine.connect() as conn:
        return message_row(conn, message_id)
