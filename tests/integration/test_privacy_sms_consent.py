"""Specific SMS consent (issue 15, point 4): the landing page's SMS box records a consent to the campaign's owner
only; an SMS leaves only with that owner's live SMS consent, or when the campaign declares the legitimate interest
of B2B prospecting; otherwise the dispatcher cancels it (no_consent); "Retirer mon accord" withdraws it."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import prepare_batch
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.links import make_token
from store.admin import apply_campaign
from store.models import Business, Consent, Message
from tests.utils.factories import campaign_spec
from tests.utils.outreach import business, context, enrol
from web.app import create_app
from web.csrf import make_csrf

OWNER = "Département d'Ille-et-Vilaine"  # the owner of tests.utils.factories.campaign_spec
OTHER = {"name": "Rennes Métropole", "territory": {"departements": ["35"]}}
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)  # a Tuesday morning, inside every send window
NUMBER = "+33698765432"
M = Message.__table__
C = Consent.__table__


def a_campaign(engine, name: str, **overrides) -> int:
    return apply_campaign(engine, load_spec(campaign_spec(name, **overrides)), now=NOW)[0]


def sms_to(engine, campaign_id: int, business_id: int, trigger: str) -> int:
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business_id, channel="sms", status="planned", trigger=trigger,
                              ctx=context(), at=NOW - dt.timedelta(hours=1))
        conn.execute(update(M).where(M.c.id == message_id).values(recipient=NUMBER))
    return message_id


def blocked_now(app, at: dt.datetime) -> dict[int, str]:
    blocked: dict[int, str] = {}
    while (prepared := prepare_batch(app, now=at)) is not None:
        blocked.update(prepared.blocked)
    return blocked


def test_an_sms_needs_its_owners_consent_or_a_declared_legitimate_interest(settings, engine):
    app = bootstrap(settings, clock=lambda: NOW)
    mine = a_campaign(engine, "sms-departement")  # default basis: consent
    theirs = a_campaign(engine, "sms-metropole", owner=OTHER)
    declared = a_campaign(engine, "sms-metropole-pro", owner=OTHER, sms_legal_basis="legitimate_interest")
    with engine.begin() as conn:
        business_id = business(conn, "35238")
        _, landing_id = enrol(conn, mine, business_id, trigger="first_hire", at=NOW - dt.timedelta(days=2))

    # The callback form with the SMS box ticked: an SMS consent to the campaign's owner, apart from the call one.
    token = make_token(settings.resolved_secret, "m", landing_id, now=dt.datetime.now(dt.UTC))
    with TestClient(create_app(bootstrap(settings))) as client:
        page = client.get(f"/m/{token}")
        assert "J'accepte aussi de recevoir des SMS de " + OWNER.replace("'", "&#39;") in page.text
        reply = client.post(f"/m/{token}/rappel", data={
            "csrf": make_csrf(settings.resolved_secret, f"landing:{landing_id}"), "phone": "06 98 76 54 32",
            "slot": "matin", "sms": "oui"})
        assert reply.status_code == 200, reply.text
    with engine.connect() as conn:
        consents = {c.purpose: c for c in conn.execute(select(C))}
    assert set(consents) == {"call", "sms"}
    sms = consents["sms"]
    assert (sms.owner, sms.phone, sms.source) == (OWNER, NUMBER, f"landing:{landing_id}")
    assert "SMS" in sms.text and OWNER in sms.text and sms.withdrawn_at is None

    covered = sms_to(engine, mine, business_id, "creation")
    other_owner = sms_to(engine, theirs, business_id, "creation")
    legitimate = sms_to(engine, declared, business_id, "creation")
    blocked = blocked_now(app, NOW)
    assert blocked.get(other_owner) == "no_consent"  # the consent was given to the first owner only
    assert covered not in blocked and legitimate not in blocked
    with engine.connect() as conn:
        assert conn.execute(select(M.c.status).where(M.c.id == other_owner)).scalar_one() == "cancelled"

    # "Retirer mon accord" withdraws the SMS consent too: the owner's next SMS is cancelled.
    with TestClient(create_app(bootstrap(settings))) as client:
        page = client.post(f"/m/{token}/plus-d-appel",
                           data={"csrf": make_csrf(settings.resolved_secret, f"landing:{landing_id}")})
    assert page.status_code == 200
    with engine.connect() as conn:
        assert all(c.withdrawn_at is not None for c in conn.execute(select(C)))
    later = sms_to(engine, mine, business_id, "takeover")
    assert blocked_now(app, NOW + dt.timedelta(hours=1)).get(later) == "no_consent"


def test_a_relationship_declared_by_a_partner_still_covers_an_sms(settings, engine):
    """The call path's rule, reused: a partner-declared existing relationship (`phone_consent`) is enough."""
    app = bootstrap(settings, clock=lambda: NOW)
    theirs = a_campaign(engine, "sms-metropole", owner=OTHER)
    with engine.begin() as conn:
        related, unknown = business(conn, "35238"), business(conn, "35238", name="Menuiserie Morel")
        conn.execute(update(Business.__table__).where(Business.__table__.c.id == related)
                     .values(phone_consent=True))
    ok, refused = sms_to(engine, theirs, related, "creation"), sms_to(engine, theirs, unknown, "creation")
    blocked = blocked_now(app, NOW)
    assert ok not in blocked and blocked.get(refused) == "no_consent"
