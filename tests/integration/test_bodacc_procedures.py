"""A BODACC safeguard or receivership notice never enrols a business into a critical-period campaign (issue 13,
point 8); a partner's critical-period signal still does, and a liquidation ends outreach. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.ingest import ingest_bodacc
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.models import Business, Enrollment, TriggerEvent
from tests.integration.test_journeys import add_business
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C
from tests.utils.factories import campaign_spec

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
B, E, ENR = Business.__table__, TriggerEvent.__table__, Enrollment.__table__


def notice(ident: str, siren: str, nature: str) -> dict:
    return {"id": ident, "dateparution": "2026-11-27", "familleavis": "collective", "registre": [siren],
            "jugement": json.dumps({"nature": nature, "date": "2026-11-25"})}


def test_a_safeguard_notice_is_not_a_critical_period(settings, engine, tmp_path):
    hard_times, _, _ = apply_campaign(engine, load_spec(campaign_spec(
        "periode-difficile-35", triggers=["critical_period"],
        steps=[{"channel": "email", "delay": "0d", "template": "critical_period"}])), now=NOW)
    with engine.begin() as conn:
        safeguard = add_business(conn, 1, siret=SIRET_A, siren=SIRET_A[:9], email="a@exemple.fr")
        liquidated = add_business(conn, 2, siret=SIRET_B, siren=SIRET_B[:9], email="b@exemple.fr")
        signalled = add_business(conn, 3, siret=SIRET_C, siren=SIRET_C[:9], email="c@exemple.fr")
        # A real hard-period signal from a partner (a chamber that saw orders fall) stays a critical period.
        conn.execute(E.insert().values(
            source="partner:1", external_id="cci-1", type="critical_period", business_id=signalled,
            siret=SIRET_C, siren=SIRET_C[:9], occurred_on=dt.date(2026, 11, 30), received_at=NOW,
            status="accepted", planned=False, payload={}))
    path = tmp_path / "bodacc.json"
    path.write_text(json.dumps([
        notice("S1", SIRET_A[:9], "Jugement d'ouverture d'une procédure de sauvegarde"),
        notice("L1", SIRET_B[:9], "Jugement d'ouverture d'une procédure de liquidation judiciaire"),
    ]))
    report = ingest_bodacc(engine, path, today=TODAY, now=NOW)
    assert report.events["collective_procedure"] == 1 and report.events["closure"] == 1
    assert "critical_period" not in report.events

    plan_all(bootstrap(settings, clock=lambda: NOW))

    with engine.connect() as conn:
        enrolled = {r.business_id for r in conn.execute(select(ENR.c.business_id).where(
            ENR.c.campaign_id == hard_times))}
        stages = dict(conn.execute(select(B.c.id, B.c.lifecycle_stage)).all())
        states = dict(conn.execute(select(B.c.id, B.c.state)).all())
    assert safeguard not in enrolled and liquidated not in enrolled
    assert signalled in enrolled
    assert stages[safeguard] == "collective_procedure"
    assert states[liquidated] == "closed" and stages[liquidated] == "closed"


def test_a_campaign_reaches_a_procedure_only_when_it_names_it(settings, engine, tmp_path):
    careful, _, _ = apply_campaign(engine, load_spec(campaign_spec(
        "prevention-35", triggers=["collective_procedure"],
        steps=[{"channel": "email", "delay": "0d", "template": "collective_procedure", "fallback": ["letter"]}])),
        now=NOW)
    with engine.begin() as conn:
        business = add_business(conn, 1, siret=SIRET_A, siren=SIRET_A[:9], email="a@exemple.fr")
    path = tmp_path / "bodacc.json"
    path.write_text(json.dumps([
        notice("R1", SIRET_A[:9], "Jugement d'ouverture d'une procédure de redressement judiciaire")]))
    ingest_bodacc(engine, path, today=TODAY, now=NOW)
    plan_all(bootstrap(settings, clock=lambda: NOW))
    with engine.connect() as conn:
        enrolled = {r.business_id for r in conn.execute(select(ENR.c.business_id).where(
            ENR.c.campaign_id == careful, ENR.c.trigger_type == "collective_procedure"))}
    assert enrolled == {business}
