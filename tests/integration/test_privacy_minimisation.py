"""Minimisation at the edges (issue 15, point 5): a partner payload keeps only the fields declared for its event
type (API, partner JSON feed, partner file), the rest is dropped and counted, never refused; its free text is
purged first by the retention while its declared data stay; a stored message context holds no contact."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app import privacy
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.ingest import import_partner_file
from store.admin import add_partner
from store.models import Message, TriggerEvent
from tests.unit.test_sirene import SIRET_A
from tests.utils.privacy import EMAIL, NOW, PHONE, build_business, partner_item, post_events
from web.app import create_app

E = TriggerEvent.__table__
SIRET_B = "35600000000048"  # La Poste's head office: a valid SIRET
SIRET_C = "73282932000074"


def payloads(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return dict(conn.execute(select(E.c.external_id, E.c.payload).where(E.c.partner_id.is_not(None))).all())


def test_the_api_keeps_declared_fields_only_and_counts_the_rest(settings, engine):
    token = add_partner(engine, "bge-35", ["creation", "first_hire"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    item = partner_item("bge-1", SIRET_A) | {"payload": {
        "funding_type": "pret_honneur", "note": "Suivi par Mme Le Goff", "conseiller": "Mme Le Goff",
        "dossier": {"numero": "BGE-2026-117"}}}
    hire = partner_item("bge-2", SIRET_B) | {"type": "first_hire", "payload": {"contract_type": "cdi", "hires": 1}}
    with TestClient(create_app(bootstrap(settings))) as client:
        answer = post_events(client, token, [item, hire])
    assert answer["accepted"] == 2 and answer["rejected"] == 0 and answer["dropped_fields"] == 2
    stored = payloads(engine)
    assert stored["bge-1"] == {"funding_type": "pret_honneur", "note": "Suivi par Mme Le Goff"}
    assert stored["bge-2"] == {"contract_type": "cdi", "hires": 1}


def test_a_partner_file_and_a_json_feed_drop_undeclared_fields_with_a_count(settings, engine, tmp_path):
    add_partner(engine, "cma-35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    csv = tmp_path / "cma.csv"
    csv.write_text("external_id;type;siret;occurred_on;commune_code;payload.program;payload.conseiller;"
                   "payload.note\n"
                   f"cma-1;creation;{SIRET_A};2026-11-20;;parcours-creation;M. Morel;A rappeler\n"
                   f"cma-2;creation;{SIRET_C};2026-11-21;;;Mme Riou;\n", encoding="utf-8")
    report = import_partner_file(engine, csv, partner="cma-35", today=NOW.date(), now=NOW)
    assert report.accepted == 2 and report.events["champs non déclarés retirés"] == 2
    stored = payloads(engine)
    assert stored["cma-1"] == {"program": "parcours-creation", "note": "A rappeler"}
    assert stored["cma-2"] == {}

    from orchestrator.app.feeds import ingest_partner_json

    body = tmp_path / "feed.json"
    body.write_text(json.dumps({"events": [partner_item("cma-3", SIRET_B) | {"payload": {
        "adviser_role": "conseiller_cma", "telephone_conseiller": "02 99 00 00 00"}}]}), encoding="utf-8")
    app = bootstrap(settings, clock=lambda: NOW)

    class Feed:  # what ingest_partner_json reads of a feed row
        partner = "cma-35"

    report = ingest_partner_json(app, Feed(), body, today=NOW.date(), now=NOW)
    assert report.events["champs non déclarés retirés"] == 1
    assert payloads(engine)["cma-3"] == {"adviser_role": "conseiller_cma"}


def test_retention_purges_free_text_first_and_keeps_declared_data(settings, engine):
    token = add_partner(engine, "bge-35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    item = partner_item("bge-1", SIRET_A) | {"payload": {"funding_type": "pret_honneur", "note": "Suivi par X"}}
    with TestClient(create_app(bootstrap(settings))) as client:
        post_events(client, token, [item])
    later = bootstrap(settings, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=400))
    assert privacy.purge(later, dry_run=True)["triggerevent"] == {"(sans porteur)": 1}
    privacy.purge(later, dry_run=False)
    assert payloads(engine)["bge-1"] == {"funding_type": "pret_honneur"}
    assert privacy.purge(later, dry_run=True).get("triggerevent") is None  # nothing left to purge


def test_a_stored_message_context_holds_no_contact_of_the_business(settings, engine, tmp_path):
    build_business(settings, engine, tmp_path)
    digits = PHONE.replace(" ", "")[1:]
    with engine.connect() as conn:
        contexts = conn.execute(select(Message.__table__.c.context)).scalars().all()
    assert contexts
    for context in contexts:
        text = json.dumps(context, ensure_ascii=False)
        assert EMAIL not in text and digits not in text.replace(" ", "")
