"""Issue 14, findings 1, 3 and 5: a partner changes only what its scope allows, through every door.

A partner attaches events to, and updates, only businesses the store places inside its territory (or its
own, not placed by Sirene yet); a commune it sends over Sirene's is a proposal; a new address never lifts
an opt-out; a duplicate changes nothing and a detail left out never erases one; the JSON feed is the same
intake as the API. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.feeds import ingest_partner_json
from orchestrator.app.ingest import import_partner_file, ingest_sirene
from store.admin import add_partner
from store.models import Business, BusinessProposal, TriggerEvent
from store.suppressions import suppress, suppressed_among
from tests.integration.test_intake_fix_partner_scope import sirets
from tests.unit.test_sirene import row, write
from web.app import create_app

B = Business.__table__
DAY = (dt.date.today() - dt.timedelta(days=3)).isoformat()


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def post(client, token, items):
    reply = client.post("/api/v1/events", json={"events": items}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def item(external_id, siret, *, type_="creation", business=None, contact=None):
    out = {"external_id": external_id, "type": type_, "siret": siret, "occurred_on": DAY}
    if business is not None:
        out["business"] = business
    if contact is not None:
        out["contact"] = contact
    return out


def business(engine, siret):
    with engine.connect() as conn:
        return conn.execute(select(B).where(B.c.siret == siret)).one()


def events_of(engine, siret):
    t = TriggerEvent.__table__
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t).where(t.c.siret == siret)).scalar()


def proposals(engine):
    t = BusinessProposal.__table__
    with engine.connect() as conn:
        return [(r.field, r.current_value, r.proposed_value)
                for r in conn.execute(select(t).order_by(t.c.field, t.c.id))]


def sirene(engine, tmp_path, *rows):
    ingest_sirene(engine, write(tmp_path / "stock.csv", list(rows)), today=dt.date.today(), now=dt.datetime.now(dt.UTC))


def test_a_partner_cannot_take_over_a_business_placed_elsewhere(client, engine, tmp_path):
    paris, = sirets(1)
    sirene(engine, tmp_path, row(siret=paris, codeCommuneEtablissement="75111", codePostalEtablissement="75011",
                                 libelleCommuneEtablissement="PARIS"))
    before = business(engine, paris)
    token = add_partner(engine, "bge-35", ["creation", "closure"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    # The body says Rennes; the store says Paris: the store decides.
    takeover = item("t-1", paris, business={"name": "Pirate SARL", "commune_code": "35238"},
                    contact={"email": "pirate@exemple.fr", "phone": "06 12 34 56 78", "consent": True})
    closure = item("t-2", paris, type_="closure")
    body = post(client, token, [takeover, closure])
    assert [(i["status"], i["field"]) for i in body["items"]] == [("rejected", "commune_code")] * 2
    assert "75056" in body["items"][0]["reason"]
    after = business(engine, paris)
    assert (after.name, after.commune_code, after.email, after.phone, after.state) == (
        before.name, "75056", None, None, "active")
    assert events_of(engine, paris) == 0 and proposals(engine) == []


def test_in_scope_details_fill_in_but_a_partner_never_overwrites_sirene(client, engine, tmp_path):
    rennes, = sirets(1)
    sirene(engine, tmp_path, row(siret=rennes))
    before = business(engine, rennes)
    token = add_partner(engine, "bge-35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    moved = item("m-1", rennes, business={"name": "Autre Nom", "commune_code": "35047"},
                 contact={"email": "patron@exemple.fr", "phone": "06 12 34 56 78", "consent": True})
    assert post(client, token, [moved])["items"][0]["status"] == "accepted"
    after = business(engine, rennes)
    # Where it is and what it is called stay Sirene's; the contact points are the partner's to give.
    assert (after.commune_code, after.name, after.street) == ("35238", before.name, before.street)
    assert (after.email, after.phone, after.phone_consent) == ("patron@exemple.fr", "+33612345678", True)
    assert proposals(engine) == [("commune_code", "35238", "35047"), ("name", before.name, "Autre Nom")]
    # The same proposal again is kept once.
    post(client, token, [item("m-2", rennes, business={"commune_code": "35047"})])
    assert len(proposals(engine)) == 2


def test_a_partner_corrects_its_own_business_until_sirene_places_it(client, engine, tmp_path):
    own, unplaced = sirets(2)
    mine = add_partner(engine, "bge-35", ["creation", "first_hire"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    other = add_partner(engine, "cma-35", ["creation", "first_hire"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    assert post(client, mine, [item("a-1", own, business={"name": "Durand", "commune_code": "35238"})]
                )["accepted"] == 1
    # Its own business, not placed by Sirene: its corrections apply.
    post(client, mine, [item("a-2", own, type_="first_hire", business={"name": "Durand & Fils",
                                                                        "commune_code": "35047"})])
    assert (business(engine, own).name, business(engine, own).commune_code) == ("Durand & Fils", "35047")
    # Another partner of the same territory may attach events, not move or rename it.
    post(client, other, [item("b-1", own, type_="first_hire", business={"name": "X", "commune_code": "35051"})])
    assert (business(engine, own).name, business(engine, own).commune_code) == ("Durand & Fils", "35047")
    assert [p[0] for p in proposals(engine)] == ["commune_code", "name"]
    # A business another partner created without saying where: nobody can check the territory.
    post(client, other, [item("b-2", unplaced, business={"name": "Sans Commune"})])
    body = post(client, mine, [item("a-3", unplaced, business={"commune_code": "35238"})])
    assert (body["items"][0]["status"], body["items"][0]["field"]) == ("rejected", "siret")
    assert business(engine, unplaced).commune_code is None
    # Once Sirene places it in Brest, it is out of the partner's territory, whatever the body says.
    sirene(engine, tmp_path, row(siret=own, codeCommuneEtablissement="29019", codePostalEtablissement="29200",
                                 libelleCommuneEtablissement="BREST"))
    body = post(client, mine, [item("a-4", own, type_="first_hire", business={"commune_code": "35238"})])
    assert (body["items"][0]["status"], body["items"][0]["field"]) == ("rejected", "commune_code")
    assert business(engine, own).commune_code == "29019"


def test_a_new_address_never_lifts_an_opt_out(client, engine):
    known, = sirets(1)
    token = add_partner(engine, "bge-35", ["creation", "first_hire"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    post(client, token, [item("s-1", known, business={"commune_code": "35238"},
                              contact={"email": "ancien@exemple.fr", "phone": "06 12 34 56 78"})])
    with engine.begin() as conn:
        suppress(conn, "email", "ancien@exemple.fr", "unsubscribe", "unsubscribe_link", now=dt.datetime.now(dt.UTC))
    post(client, token, [item("s-2", known, type_="first_hire",
                              contact={"email": "Nouveau@Exemple.fr", "phone": "07 98 76 54 32"})])
    after = business(engine, known)
    assert (after.email, after.phone) == ("Nouveau@exemple.fr", "+33798765432")
    with engine.connect() as conn:
        assert suppressed_among(conn, "email", [after.email]) == {"nouveau@exemple.fr"}
        assert suppressed_among(conn, "phone", [after.phone]) == set()  # opted out by e-mail only
    with engine.begin() as conn:
        suppress(conn, "phone", "+33798765432", "stop_reply", now=dt.datetime.now(dt.UTC))
    post(client, token, [item("s-3", known, type_="first_hire", contact={"phone": "06 11 22 33 44"})])
    with engine.connect() as conn:
        assert suppressed_among(conn, "phone", ["+33611223344"]) == {"+33611223344"}


def test_a_duplicate_changes_nothing_and_absent_is_not_empty(client, engine, tmp_path):
    first, second, third = sirets(3)
    token = add_partner(engine, "bge-35", ["creation", "first_hire"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    full = item("d-1", first, business={"name": "Boulangerie Martin", "commune_code": "35238"},
                contact={"email": "martin@exemple.fr", "phone": "06 12 34 56 78", "consent": True})
    copy = item("d-1", first, business={"name": "Nom Remplacé", "commune_code": "35047"})
    body = post(client, token, [full, copy])
    assert [i["status"] for i in body["items"]] == ["accepted", "duplicate"]
    later = item("d-1", first, business={"name": "Encore Autre"}, contact={"email": "autre@exemple.fr"})
    assert post(client, token, [later])["items"][0]["status"] == "duplicate"
    b = business(engine, first)
    assert (b.name, b.commune_code, b.email, b.phone, b.phone_consent) == (
        "Boulangerie Martin", "35238", "martin@exemple.fr", "+33612345678", True)
    assert proposals(engine) == []

    # Two different events in one batch: the one with fewer details does not erase the other's.
    body = post(client, token, [
        item("e-1", second, business={"name": "Garage Le Goff", "commune_code": "35238"},
             contact={"phone": "06 12 34 56 78", "consent": True}),
        item("e-2", second, type_="first_hire", business={"naf_code": "45.20A"}),
    ])
    assert body["accepted"] == 2
    b = business(engine, second)
    assert (b.name, b.phone, b.phone_consent, b.naf_code) == ("Garage Le Goff", "+33612345678", True, "45.20A")

    # A partner file: the same row twice, the copy with another name and no phone.
    path = tmp_path / "bge.csv"
    path.write_text(
        "external_id;type;siret;occurred_on;name;commune_code;phone;consent\n"
        f"f-1;creation;{third};{DAY};Coiffure Lina;35238;06 12 34 56 78;oui\n"
        f"f-1;creation;{third};{DAY};Autre Salon;35047;;\n", encoding="utf-8")
    report = import_partner_file(engine, path, partner="bge-35", today=dt.date.today(), now=dt.datetime.now(dt.UTC))
    assert report.stored == 1 and report.skipped["already stored"] == 1
    b = business(engine, third)
    assert (b.name, b.commune_code, b.phone, b.phone_consent) == ("Coiffure Lina", "35238", "+33612345678", True)


def test_the_partner_json_feed_goes_through_the_same_intake(settings, engine, tmp_path):
    paris, rennes = sirets(2)
    sirene(engine, tmp_path, row(siret=paris, codeCommuneEtablissement="75111", codePostalEtablissement="75011",
                                 libelleCommuneEtablissement="PARIS"), row(siret=rennes))
    add_partner(engine, "bge-35", ["creation", "closure"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    body = tmp_path / "events.json"
    body.write_text(json.dumps({"events": [
        item("j-1", paris, type_="closure"),  # outside the territory: refused, Paris stays open
        item("j-2", rennes, type_="closure"),  # inside: stored, and it closes the business
        item("j-3", paris, business={"commune_code": "35238"}),  # the body's commune is not believed
    ]}), encoding="utf-8")
    report = ingest_partner_json(bootstrap(settings), SimpleNamespace(partner="bge-35"), body, today=dt.date.today(),
                                 now=dt.datetime.now(dt.UTC))
    assert report.read == 3 and report.stored == 1
    assert report.rejected == {"hors du territoire du partenaire: commune 75056": 2}
    assert business(engine, paris).state == "active" and events_of(engine, paris) == 0
    assert business(engine, rennes).state == "closed"


def test_a_pending_event_is_attached_only_inside_the_partner_territory(client, engine, tmp_path):
    paris, rennes = sirets(2)
    token = add_partner(engine, "bge-35", ["creation", "closure"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    # Nobody knows either SIRET yet and the events say nowhere: both wait for Sirene.
    body = post(client, token, [item("p-1", paris, type_="closure"), item("p-2", rennes, type_="closure")])
    assert [i["status"] for i in body["items"]] == ["pending", "pending"]
    sirene(engine, tmp_path, row(siret=paris, codeCommuneEtablissement="75111", codePostalEtablissement="75011",
                                 libelleCommuneEtablissement="PARIS"), row(siret=rennes))
    # Sirene placed one in Paris: that partner's closure is refused, never attached; the other one closes.
    t = TriggerEvent.__table__
    with engine.connect() as conn:
        fate = dict(conn.execute(select(t.c.external_id, t.c.status)).all())
        attached = conn.execute(select(t.c.business_id).where(t.c.external_id == "p-1")).scalar()
    assert fate == {"p-1": "rejected", "p-2": "accepted"} and attached is None
    assert business(engine, paris).state == "active"
    assert business(engine, rennes).state == "closed"


def test_an_event_stored_meanwhile_by_another_process_applies_nothing(engine, monkeypatch):
    """On SQLite the businesses new events create are written before the events (`create_first`), found new
    by a read of the events' keys; when another process stores one of those events between that read and the
    insert, the unique constraint finds it, the batch is rolled back and stored again events first."""
    from orchestrator.app import intake
    from store import events as store_events_module
    from triggers.model import BusinessFacts, EventIn

    first, fresh = sirets(2)
    now = dt.datetime.now(dt.UTC)

    def event(siret, name):
        return EventIn("partner:9", "race-1", "creation", dt.date.today(), siret, siret[:9],
                       BusinessFacts(siret, name=name, commune_code="35238"))

    assert [s.status for s in intake.store_with_effects(engine, [event(first, "Boulangerie Martin")],
                                                        partner_id=None, today=dt.date.today(), now=now)] \
        == ["accepted"]
    # The read of the keys as it was before the other process committed the same event.
    reads: list = []
    monkeypatch.setattr(store_events_module, "stored_keys", lambda conn, keys: reads.append(keys) or set())
    again = intake.store_with_effects(engine, [event(fresh, "Nom Remplacé")], partner_id=None,
                                      today=dt.date.today(), now=now)
    assert [s.status for s in again] == ["duplicate"]
    assert len(reads) == (1 if engine.dialect.name == "sqlite" else 0)  # PostgreSQL: events first, always
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(B).where(B.c.siret == fresh)).scalar() == 0
    assert business(engine, first).name == "Boulangerie Martin"
