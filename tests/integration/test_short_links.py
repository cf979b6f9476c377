"""`/s/<code>` (issue 13, point 5): the short link of SMS and letters leads to the same click tracking and landing
page as `/r/<token>`, only for a message that left recently; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.short_codes import short_code
from store.models import Interaction
from tests.utils.outreach import business, campaign, enrol
from web.app import create_app
from web.log_redaction import redact

INTERACTIONS = Interaction.__table__


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def _message(engine, commune: str, **kw) -> int:
    campaign_id = campaign(engine, f"court-{commune}", "35")
    with engine.begin() as conn:
        b = business(conn, commune)
        return enrol(conn, campaign_id, b, **kw)[1]


def test_a_short_link_records_the_click_and_opens_the_landing_page(client, settings, engine):
    now = dt.datetime.now(dt.UTC)
    m = _message(engine, "35238", at=now - dt.timedelta(days=2), channel="sms")
    reply = client.get(f"/s/{short_code(settings.resolved_secret, m)}")
    assert reply.status_code == 200 and reply.url.path.startswith("/m/")
    assert "Claire Le Goff" in reply.text
    with engine.connect() as conn:
        rows = conn.execute(select(INTERACTIONS)).all()
    assert [(r.kind, r.message_id) for r in rows] == [("click", m)]


def test_unknown_unsent_and_old_short_links_lead_nowhere(client, settings, engine):
    now = dt.datetime.now(dt.UTC)
    old = _message(engine, "35238", at=now - dt.timedelta(days=400), channel="sms")
    planned = _message(engine, "35047", at=now, status="planned", channel="sms")
    secret = settings.resolved_secret
    for path in (f"/s/{short_code(secret, old)}", f"/s/{short_code(secret, planned)}",
                 f"/s/{short_code(secret, 999_999)}", "/s/0O1lI", f"/s/{short_code('x' * 32, planned)}"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 404 and "ien inconnu ou expiré" in reply.text, path
    with engine.connect() as conn:
        assert conn.execute(select(INTERACTIONS)).all() == []


def test_access_logs_mask_short_codes():
    assert redact("GET /s/Ab3xZ HTTP/1.1") == "GET /s/*** HTTP/1.1"


def test_an_address_guessing_codes_is_held_back(client, settings, engine):
    now = dt.datetime.now(dt.UTC)
    real = _message(engine, "35238", at=now - dt.timedelta(days=1), channel="sms")
    guesses = [short_code(settings.resolved_secret, 500_000 + i) for i in range(30)]  # no such messages
    assert all(client.get(f"/s/{code}", follow_redirects=False).status_code == 404 for code in guesses)
    held = client.get(f"/s/{short_code(settings.resolved_secret, real)}", follow_redirects=False)
    assert held.status_code == 429 and "réessayez dans un quart" in held.text
    assert held.headers["Retry-After"] == "900"
    # Another address is not held back by this one's guesses.
    other = TestClient(client.app, client=("192.0.2.9", 40000))
    assert other.get(f"/s/{short_code(settings.resolved_secret, real)}", follow_redirects=False).status_code == 303
