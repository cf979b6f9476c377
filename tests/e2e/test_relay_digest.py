"""Intermediaries as a channel (issue 16, point 1), end to end on both stores with the real SMTP sink: an accounting
firm with 40 clients gets ONE digest listing the 12 concerned by the 2027 e-invoicing deadline (the holdout's are not
in it), answers "je m'en occupe" for 5 through the digest's links, and those 5 get no direct e-mail while the 7
others do."""

from __future__ import annotations

import datetime as dt
import re

import requests
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.planner import moment_arm
from store.admin import apply_campaign
from store.intermediaries import import_clients, import_intermediaries
from store.models import Business, Interaction, Message, TriggerEvent
from tests.utils.factories import campaign_spec
from tests.utils.outreach import business

# A Tuesday evening inside the building trades' window (17:30-19:30 Paris), far from holidays.
NOW = dt.datetime(2026, 12, 1, 16, 45, tzinfo=dt.UTC)
OCCURRED = dt.date(2026, 11, 30)
HOLDOUT = 20
PAYLOAD = {"deadline": "einvoicing-issuing-2027", "title": "émission des factures électroniques",
           "deadline_date": "2027-09-01", "receive_date": "2026-09-01", "issue_date": "2027-09-01"}


def _deadline_event(b) -> dict:
    return {"source": "calendar", "external_id": f"deadline:einvoicing-issuing-2027:90:{b.siret}", "type": "deadline",
            "siret": b.siret, "siren": b.siret[:9], "business_id": b.id, "occurred_on": OCCURRED,
            "status": "accepted", "planned": False, "payload": PAYLOAD, "received_at": NOW}


def _parts(body: str) -> dict[str, dict[str, str]]:
    """The digest's client parts by business name, with their answer links."""
    out = {}
    for part in re.split(r"^--- \d+/\d+ ---$", body, flags=re.M)[1:]:
        name = part.strip().split(" (SIRET", 1)[0]
        links = dict(re.findall(r"^- (Je m'en occupe|Déjà fait|Pas concerné) : (\S+)$", part, flags=re.M))
        out[name] = links
    return out


def test_one_digest_per_firm_answers_stop_direct_messages(settings, engine, smtp_sink, live_server):
    with engine.begin() as conn:
        ids = [business(conn, "35238", name=f"Plomberie Numéro {i:02d}", email=f"client{i:02d}@exemple.fr")
               for i in range(40)]
        rows = conn.execute(select(Business.__table__).where(Business.__table__.c.id.in_(ids))
                            .order_by(Business.__table__.c.id)).all()
    firm = "key;name;kind;email\ncabinet-durand;Cabinet Durand Expertise;cabinet_comptable;cabinet@durand.fr\n"
    assert import_intermediaries(engine, firm, now=NOW)[0] == 1
    clients = "intermediary;siret;source;date\n" + "".join(f"cabinet-durand;{r.siret};;2026-10-01\n" for r in rows)
    assert import_clients(engine, clients, source_name="clients-durand.csv", today=OCCURRED, now=NOW) == (40, [])

    # The deadline concerns 15 of the 40: 12 drawn in the treatment arm, 3 in the holdout.
    treated = [r for r in rows if moment_arm(r.id, "deadline", "2026", HOLDOUT) == "treatment"][:12]
    held = [r for r in rows if moment_arm(r.id, "deadline", "2026", HOLDOUT) == "holdout"][:3]
    assert len(treated) == 12 and len(held) == 3
    with engine.begin() as conn:
        conn.execute(TriggerEvent.__table__.insert(), [_deadline_event(r) for r in treated + held])

    spec = campaign_spec(name="factures-35", triggers=["deadline"], holdout=HOLDOUT, steps=[
        {"channel": "relay", "delay": "0d", "template": "deadline"},
        {"channel": "email", "delay": "3d", "template": "deadline"}])
    apply_campaign(engine, load_spec(spec), now=NOW)

    app = bootstrap(settings, clock=lambda: NOW)
    counts = plan_all(app)
    assert counts["messages"] == 12 and counts["skipped_holdout"] == 3
    assert dispatch_all(app)["sent"] == 12
    app.close()

    # ONE digest, to the firm, listing the 12 and none of the holdout.
    assert smtp_sink.received == 1
    digest = smtp_sink.messages[0]
    assert digest["To"] == "cabinet@durand.fr"
    body = digest.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Bonjour Cabinet Durand Expertise" in body
    parts = _parts(body)
    assert set(parts) == {r.name for r in treated}
    for r in held:
        assert r.name not in body and r.siret not in body
    for r in treated:
        assert f"SIRET {r.siret}" in body
    assert body.count("Message à transférer") == 12

    # "Je m'en occupe" for 5 clients, through the links (GET shows, POST records).
    taken = treated[:5]
    for r in taken:
        url = parts[r.name]["Je m'en occupe"]
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "Confirmer" in page.text and r.name in page.text
        done = requests.post(url, timeout=10)
        assert done.status_code == 200 and "c'est noté" in done.text
    assert requests.post(parts[treated[5].name]["Pas concerné"], timeout=10).status_code == 200
    assert requests.get(parts[treated[6].name]["Déjà fait"] + "x", timeout=10).status_code == 404
    with engine.connect() as conn:
        kinds = conn.execute(select(Interaction.__table__.c.business_id, Interaction.__table__.c.kind)).all()
    assert sorted(kinds) == sorted([(r.id, "relay_taken") for r in taken] + [(treated[5].id, "relay_not_concerned")])

    # Step 2, a week later: a direct e-mail to the 7 others, none to the 5 the firm took in hand.
    later = bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=7))
    counts = plan_all(later)
    assert counts["followup_messages"] == 7 and counts["followup_stopped"] == 5
    assert dispatch_all(later)["sent"] == 7
    later.close()
    direct = {m["To"] for m in smtp_sink.messages[1:]}
    assert direct == {r.email for r in treated[5:]}
    with engine.connect() as conn:
        stopped = conn.execute(select(Message.__table__.c.business_id).where(
            Message.__table__.c.last_error == "relay_handled")).scalars().all()
    assert sorted(stopped) == sorted(r.id for r in taken)
