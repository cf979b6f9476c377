"""Provider callbacks over real HTTP: a STOP reply is a global opt-out; hooks need their token."""

from __future__ import annotations

import requests
from sqlalchemy import select

from store.models import Suppression

TOKEN = "hooks-token-0123456789"


def test_hooks_are_off_without_a_token_setting(live_server):
    reply = requests.post(f"{live_server}/hooks/sms/replies?token=x", json=[], timeout=10)
    assert reply.status_code == 404


def test_stop_reply_becomes_an_opt_out_and_a_wrong_token_is_refused(settings, engine, live_server):
    settings.hooks_token = TOKEN
    stop = {"from": "06 12 34 56 78", "text": "Stop", "received_at": "2026-11-27T10:00:00+01:00"}
    assert requests.post(f"{live_server}/hooks/sms/replies?token=wrong", json=[stop], timeout=10).status_code == 403
    reply = requests.post(f"{live_server}/hooks/sms/replies?token={TOKEN}", json=[stop], timeout=10)
    assert reply.status_code == 200, reply.text
    with engine.connect() as conn:
        rows = conn.execute(select(Suppression.__table__.c.channel, Suppression.__table__.c.address,
                                   Suppression.__table__.c.reason)).all()
    assert [tuple(r) for r in rows] == [("phone", "+33612345678", "stop_reply")]


def test_unreadable_reply_is_a_400_that_names_the_problem(settings, live_server):
    settings.hooks_token = TOKEN
    reply = requests.post(f"{live_server}/hooks/sms/replies?token={TOKEN}", json=[{"text": "STOP"}], timeout=10)
    assert reply.status_code == 400
    assert "numéro" in reply.json()["detail"]
