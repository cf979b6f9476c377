"""Objection is global across owners (issue 15, point 2): the unsubscribe link (/u/, also the landing page's
"Ne plus recevoir aucun message") and a STOP reply stop the messages of every owner, not only the campaign's;
the landing page offers the objection apart from "Ce n'est pas pour moi", which is an answer."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from integrations.sms_http import parse_inbound
from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.links import make_token
from store.admin import apply_campaign
from store.feedback import record_sms_replies
from store.models import Message
from store.outbox import blocked_at_send_time
from tests.utils.factories import campaign_spec
from tests.utils.outreach import business, context, enrol
from web.app import create_app

M = Message.__table__
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone
PHONE = "+33612345678"


def two_owners(engine) -> tuple[int, int]:
    basis = {"sms_legal_basis": "legitimate_interest"}
    mine = apply_campaign(engine, load_spec(campaign_spec("bienvenue-35", **basis)), now=NOW)[0]
    theirs = apply_campaign(engine, load_spec(campaign_spec(
        "metropole-35", owner={"name": "Rennes Métropole", "territory": {"departements": ["35"]}}, **basis)),
        now=NOW)[0]
    return mine, theirs


def message(engine, campaign_id, business_id, *, channel="email", status="planned", trigger="creation",
            recipient=None) -> int:
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business_id, channel=channel, status=status, trigger=trigger,
                              ctx=context(), at=NOW - dt.timedelta(hours=2))
        if recipient:
            conn.execute(update(M).where(M.c.id == message_id).values(recipient=recipient))
    return message_id


def blocked(engine, *message_ids: int) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(M).where(M.c.id.in_(message_ids))).all()
        return blocked_at_send_time(conn, rows)


def test_the_unsubscribe_link_and_stop_stop_every_owner(settings, engine):
    mine, theirs = two_owners(engine)
    with engine.begin() as conn:
        business_id = business(conn, "35238")
    sent = message(engine, mine, business_id, status="sent")
    other_email = message(engine, theirs, business_id, trigger="first_hire")
    other_sms = message(engine, theirs, business_id, channel="sms", trigger="takeover", recipient=PHONE)
    assert blocked(engine, other_email, other_sms) == {}

    token = make_token(settings.resolved_secret, "m", sent, now=dt.datetime.now(dt.UTC))
    with TestClient(create_app(bootstrap(settings))) as client:
        page = client.get(f"/m/{token}")
        unsubscribe = f"/u/{make_token(settings.resolved_secret, 'u', sent, now=dt.datetime.now(dt.UTC))}"
        # The objection, offered apart from the answer "Ce n'est pas pour moi", in gender-neutral words.
        objection = page.text[page.text.index('id="opposition"'):]
        assert "Ne plus recevoir aucun message" in objection and unsubscribe in objection
        assert page.text.index('id="non"') < page.text.index('id="opposition"')
        done = client.post(unsubscribe)
    assert done.status_code == 200 and "aucun autre organisme" in done.text
    assert blocked(engine, other_email, other_sms) == {other_email: "opted_out"}  # another owner's e-mail

    with engine.begin() as conn:
        counts = record_sms_replies(conn, parse_inbound([{"from": "06 12 34 56 78", "text": "STOP"}], zone=PARIS),
                                    source="generic", now=NOW)
    assert counts["opt_outs"] == 1
    assert blocked(engine, other_email, other_sms) == {other_email: "opted_out", other_sms: "opted_out"}
