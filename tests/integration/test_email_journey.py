"""One event becomes one e-mail at a real SMTP server; an opt-out stops everything after it."""

from __future__ import annotations

import datetime as dt

import requests
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign
from store.models import Message, Suppression
from store.suppressions import suppress
from tests.utils.factories import campaign_spec, creation_item

# A Tuesday evening inside the building trades' window (17:30-19:30 Paris: plumbers are on site by day),
# far from holidays.
NOW = dt.datetime(2026, 12, 1, 16, 45, tzinfo=dt.UTC)
# Events happen before the test's clock, whatever the real date (a fixed NOW and a real 'today' drift apart).
EVENT_DAY = NOW.date() - dt.timedelta(days=3)


def push(base, token, items):
    reply = requests.post(f"{base}/api/v1/events", json={"events": items},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    reply.raise_for_status()
    return reply.json()


def test_email_carries_headers_and_trade_then_opt_out_stops_sending(settings, engine, smtp_sink, live_server):
    app = bootstrap(settings, clock=lambda: NOW)
    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    token = add_partner(engine, "bge", ["creation"], now=NOW)
    push(live_server, token, [creation_item("e-1", email="Patron@Exemple.fr", occurred_on=EVENT_DAY)])

    assert plan_all(app)["messages"] == 1
    assert dispatch_all(app)["sent"] == 1
    assert smtp_sink.received == 1
    mail = smtp_sink.messages[0]
    assert str(mail["List-Unsubscribe"]).strip().startswith(f"<{live_server}/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"].startswith("<declic.")
    body = mail.get_body(("plain",)).get_content()
    assert "votre entreprise de plomberie" in body.lower()  # names the business the trade way (NAF 43.22A)

    # One-click unsubscribe (RFC 8058): a POST to the header's URL.
    unsubscribe_url = str(mail["List-Unsubscribe"]).strip().strip("<>")
    reply = requests.post(unsubscribe_url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert reply.status_code == 200 and "noté" in reply.text
    with engine.connect() as conn:
        assert conn.execute(select(Suppression.__table__.c.address)).scalars().all() == ["patron@exemple.fr"]

    # A second campaign and a new event for the same address: planned, never sent.
    apply_campaign(engine, load_spec(campaign_spec(name="relance-35", triggers=["first_hire"])), now=NOW)
    item = creation_item("e-2", email="patron@exemple.fr", occurred_on=EVENT_DAY)
    item["type"] = "first_hire"
    token2 = add_partner(engine, "urssaf", ["first_hire"], now=NOW)
    push(live_server, token2, [item])
    later = bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=1))
    counts = plan_all(later)
    assert counts["messages"] == 0 and counts["skipped_opted_out"] == 1
    dispatch_all(later)
    assert smtp_sink.received == 1
    app.close()
    later.close()


def test_opt_out_between_planning_and_sending_stops_the_send(settings, engine, smtp_sink, live_server):
    app = bootstrap(settings, clock=lambda: NOW)
    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    token = add_partner(engine, "bge", ["creation"], now=NOW)
    push(live_server, token, [creation_item("o-1", email="a@exemple.fr", occurred_on=EVENT_DAY),
                              creation_item("o-2", email="b@exemple.fr", occurred_on=EVENT_DAY)])
    assert plan_all(app)["messages"] == 2
    with engine.begin() as conn:
        suppress(conn, "email", "A@exemple.fr", "unsubscribe", "test", now=NOW)
    counts = dispatch_all(app)
    assert counts["sent"] == 1
    assert [m["To"] for m in smtp_sink.messages] == ["b@exemple.fr"]
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(Message.__table__.c.recipient, Message.__table__.c.status)).all())
    assert statuses == {"a@exemple.fr": "cancelled", "b@exemple.fr": "sent"}
    app.close()
