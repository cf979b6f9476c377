"""Specific consent: a callback request is a consent to be called by the campaign's owner only, with its date,
source and text; a call campaign of another owner does not call; one click on the landing page withdraws it."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.app import privacy
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.core.links import make_token
from store.models import Business, CallTask, Consent, Message
from tests.utils.outreach import campaign, context, enrol
from tests.utils.privacy import NOW, build_business
from web.app import create_app
from web.csrf import make_csrf

OWNER = "Département d'Ille-et-Vilaine"
NUMBER = "+33698765432"  # the number given on the callback form
M = Message.__table__


def call_message(engine, campaign_id: int, business_id: int, trigger: str) -> int:
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business_id, channel="call", status="planned", trigger=trigger,
                              ctx=context(), at=NOW - dt.timedelta(days=1))
        conn.execute(update(M).where(M.c.id == message_id).values(recipient=NUMBER, template="creation"))
    return message_id


def test_a_callback_consent_covers_its_owner_only_and_one_click_withdraws_it(settings, engine, tmp_path):
    built = build_business(settings, engine, tmp_path)
    with engine.connect() as conn:
        consent = conn.execute(select(Consent.__table__)).one()
        business = conn.execute(select(Business.__table__)).one()
    assert (consent.owner, consent.purpose, consent.phone) == (OWNER, "call", NUMBER)
    assert consent.source == f"landing:{built.message_id}" and OWNER in consent.text
    assert not business.phone_consent  # no longer one global, permanent flag
    exported = privacy.export_business(built.app, built.siret)
    assert exported["consentements"][0]["porteur"] == OWNER and exported["consentements"][0]["texte"]

    same_owner = campaign(engine, "appels-35", "35")
    with engine.begin() as conn:  # outreach.campaign names its owner "Département 35": make it the same owner
        conn.execute(update(Message.__table__.metadata.tables["campaign"]).where(
            Message.__table__.metadata.tables["campaign"].c.id == same_owner).values(owner=OWNER))
    other_owner = campaign(engine, "appels-metropole", "35")  # owner "Département 35"
    mine = call_message(engine, same_owner, business.id, "creation")
    theirs = call_message(engine, other_owner, business.id, "first_hire")

    dispatch_all(built.app, now=NOW + dt.timedelta(hours=1))
    with engine.connect() as conn:
        status = dict(conn.execute(select(M.c.id, M.c.status).where(M.c.id.in_([mine, theirs]))).all())
        tasks = conn.execute(select(CallTask.__table__.c.message_id)).scalars().all()
        reason = conn.execute(select(M.c.last_error).where(M.c.id == theirs)).scalar_one()
    assert status[theirs] == "cancelled" and "no_consent" in reason
    # The owner's own call goes to the queue (joined to the open callback task for that number); the other's never.
    assert status[mine] == "sent" and theirs not in tasks

    token = make_token(settings.resolved_secret, "m", built.message_id, now=dt.datetime.now(dt.UTC))
    with TestClient(create_app(bootstrap(settings))) as client:
        page = client.post(f"/m/{token}/plus-d-appel",
                           data={"csrf": make_csrf(settings.resolved_secret, f"landing:{built.message_id}")})
    assert page.status_code == 200 and "personne ne vous appellera plus" in page.text
    with engine.connect() as conn:
        withdrawn = conn.execute(select(Consent.__table__)).one()
    assert withdrawn.withdrawn_at is not None and withdrawn.withdrawn_source == f"landing:{built.message_id}"
    again = call_message(engine, same_owner, business.id, "takeover")
    dispatch_all(built.app, now=NOW + dt.timedelta(hours=2))
    with engine.connect() as conn:
        assert conn.execute(select(M.c.status).where(M.c.id == again)).scalar_one() == "cancelled"
