"""Adoption, not clicks (issue 16, point 4): `tool_adopted` events with a category, from the partner API, partner
files and ambassadors' call outcomes, attributed like conversions; the report and the dashboard show adoption by
arm and its uplift beside the conversion uplift. On both databases."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.ingest import import_partner_file
from orchestrator.cli.main import app as cli
from store.accounts import add_user
from store.admin import add_partner
from store.conversions import request_callback
from store.models import AdoptionRollup, Business, Interaction, Message
from store.report import campaign_by_name, refresh_rollup, report
from tests.integration.test_web_dashboard import PASSWORD, csrf_of, signed_in
from tests.utils.outreach import T0, business, campaign, enrol
from web.app import create_app

INTERACTIONS = Interaction.__table__
BUSINESS = Business.__table__
SEEN = (T0 + dt.timedelta(days=30)).date().isoformat()
# The truth of the seeded campaign: a business adopts a tool with probability 10 % without a message, 22 % once
# written to (every treated business is contacted): the true adoption uplift is +12 points.
P_CONTROL, P_TREATED, N_ARM, SEED = 0.10, 0.22, 500, 16


def _siret(conn, business_id: int) -> str:
    return conn.execute(select(BUSINESS.c.siret).where(BUSINESS.c.id == business_id)).scalar_one()


def _post(client, token: str, items: list[dict]) -> list[dict]:
    reply = client.post("/api/v1/events", json={"events": items}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()["items"]


def test_seeded_campaign_report_holds_the_true_adoption_uplift(engine, settings, env_settings):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    rng = random.Random(SEED)
    adopters: dict[str, list[str]] = {"treatment": [], "holdout": []}
    with engine.begin() as conn:
        for arm, p in (("treatment", P_TREATED), ("holdout", P_CONTROL)):
            for _ in range(N_ARM):
                b = business(conn, "35238")
                enrol(conn, campaign_id, b, arm=arm)
                if rng.random() < p:
                    adopters[arm].append(_siret(conn, b))
    token = add_partner(engine, "cma-35", ["tool_adopted"], now=dt.datetime.now(dt.UTC))
    categories = ["quotes_invoices", "einvoicing_platform", "payment", "booking", "online_visibility", "management"]
    items = [
        {"external_id": f"adopt-{arm}-{i}", "type": "tool_adopted", "siret": s, "occurred_on": SEEN,
         "category": categories[i % len(categories)]}
        for arm in ("treatment", "holdout") for i, s in enumerate(adopters[arm])
    ]
    with TestClient(create_app(bootstrap(settings))) as client:
        statuses = _post(client, token, items)
        assert {s["status"] for s in statuses} == {"accepted"}
        # Refused with the field and a French reason: no category, an unknown one, a category on a creation.
        bad = _post(client, token, [
            {"external_id": "x1", "type": "tool_adopted", "siret": adopters["treatment"][0], "occurred_on": SEEN},
            {"external_id": "x2", "type": "tool_adopted", "siret": adopters["treatment"][0], "occurred_on": SEEN,
             "category": "fax"},
        ])
        assert [(s["status"], s["field"]) for s in bad] == [("rejected", "category")] * 2
        assert "obligatoire" in bad[0]["reason"] and "inconnue" in bad[1]["reason"]

    with engine.connect() as conn:
        r = report(engine, campaign_by_name(conn, "bienvenue-35"))
    k_t, k_h = len(adopters["treatment"]), len(adopters["holdout"])
    up = r.adoption_uplift
    assert (up.treated_n, up.treated_converted, up.control_n, up.control_converted) == (N_ARM, k_t, N_ARM, k_h)
    assert up.lower <= P_TREATED - P_CONTROL <= up.upper  # the interval holds the truth
    assert up.significant and r.adoption_uplift_itt.difference == pytest.approx(up.difference)
    assert r.funnel["treatment"].converted == 0  # adoption is measured apart from conversion
    arms = {row["arm"]: row for row in r.table("adoption").rows}
    assert arms["Témoin (non contactés)"]["adopted"] == k_h
    assert arms["Contactés"]["lower"] < k_t / N_ARM < arms["Contactés"]["upper"]
    assert sum(row["treated"] for row in r.table("adoption_by_category").rows) == k_t

    out = CliRunner().invoke(cli, ["report", "--campaign", "bienvenue-35", "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["adoption_uplift"]["ci95"] == [up.lower, up.upper]
    assert data["adoption_uplift"]["control_n"] == N_ARM and data["uplift"] is not None
    out = CliRunner().invoke(cli, ["report", "-c", "bienvenue-35"], env={"COLUMNS": "250"})
    assert "Effet de la campagne sur l'adoption" in out.output

    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    client = signed_in(create_app(bootstrap(settings)), "op@declic.fr")
    page = client.get(f"/tableau/campagnes/{campaign_id}")
    assert page.status_code == 200
    assert "Effet sur l'adoption" in page.text and 'id="t-adoption_uplift"' in page.text
    from orchestrator.core.stats import fr_points

    assert fr_points(up.difference) in page.text and fr_points(up.lower) in page.text
    csv = client.get(f"/tableau/campagnes/{campaign_id}/export/adoption_uplift.csv").content.decode("utf-8-sig")
    assert str(N_ARM) in csv and "Traités ayant adopté" in csv


def test_partner_file_and_ambassador_outcome_record_adoption(engine, settings, tmp_path):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        b1, b2 = business(conn, "35238"), business(conn, "35238")
        _, m1 = enrol(conn, campaign_id, b1)
        held, _ = enrol(conn, campaign_id, b2, arm="holdout")
        s2 = _siret(conn, b2)
        msg = conn.execute(select(Message.__table__).where(Message.__table__.c.id == m1)).one()
        task_id = request_callback(conn, msg, phone="+33612345678", slot="matin", due_at=T0, note="",
                                   assignee="ambassador:7", script="Rappeler.", now=T0).task_id
    add_partner(engine, "cma-35", ["tool_adopted"], now=dt.datetime.now(dt.UTC))
    path = tmp_path / "adoptions.csv"
    path.write_text(
        "external_id;type;siret;occurred_on;category\n"
        f"a1;tool_adopted;{s2};{SEEN};Visibilité en ligne\n"
        f"a2;tool_adopted;{s2};{SEEN};\n"
        f"a3;creation;{s2};{SEEN};payment\n",
        encoding="utf-8",
    )
    class Sink(list):
        write = list.append

    rejects = Sink()
    result = import_partner_file(engine, path, partner="cma-35", rejects=rejects, today=dt.date.today(),
                                 now=dt.datetime.now(dt.UTC))
    assert result.accepted == 1 and [(r.line, r.field) for r in rejects] == [(3, "category"), (4, "category")]

    add_user(engine, email="claire@exemple.fr", name="Claire", password=PASSWORD, role="ambassador",
             assignee="ambassador:7", now=dt.datetime.now(dt.UTC))
    client = signed_in(create_app(bootstrap(settings)), "claire@exemple.fr")
    page = client.get("/tableau/appels")
    assert "A commencé à utiliser" in page.text and "prise de rendez-vous" in page.text
    refused = client.post(f"/tableau/appels/{task_id}",
                          data={"csrf": csrf_of(page.text), "outcome": "done", "adopted": "fax"})
    assert refused.status_code == 400
    done = client.post(f"/tableau/appels/{task_id}",
                       data={"csrf": csrf_of(page.text), "outcome": "done", "adopted": "booking"})
    assert done.status_code == 200

    with engine.connect() as conn:
        rows = conn.execute(select(INTERACTIONS).where(INTERACTIONS.c.kind == "tool_adopted")
                            .order_by(INTERACTIONS.c.id)).all()
        r = report(engine, campaign_by_name(conn, "bienvenue-35"))
    assert [(x.enrollment_id, x.data["category"]) for x in rows] == [(held, "online_visibility"),
                                                                      (rows[1].enrollment_id, "booking")]
    assert rows[1].data["source"] == "call_task" and rows[1].campaign_id == campaign_id
    arms = {row["arm"]: (row["n"], row["adopted"]) for row in r.table("adoption").rows}
    assert arms == {"Contactés": (1, 1), "Tous les ciblés": (1, 1), "Témoin (non contactés)": (1, 1)}


def _adopt(conn, campaign_id: int, business_id: int, enrollment_id: int, category: str, at: dt.datetime) -> None:
    conn.execute(INTERACTIONS.insert().values(business_id=business_id, message_id=None, campaign_id=campaign_id,
                                              enrollment_id=enrollment_id, kind="tool_adopted", at=at,
                                              data={"category": category, "source": "test"}))


def test_adoption_is_read_from_the_rollup_as_of_its_refresh(engine, settings):
    """The report takes adoption from the rollup made with the funnel's (not from every message of the campaign),
    equal to the live figures at the refresh, then unchanged until the next refresh; never rolled up: live."""
    campaign_id = campaign(engine, "bienvenue-35", "35")
    later = T0 + dt.timedelta(days=20)
    with engine.begin() as conn:
        treated = []
        for i in range(8):  # 6 contacted, 2 whose message failed
            b = business(conn, "35238")
            e, _ = enrol(conn, campaign_id, b, variant="A" if i % 2 else "B", status="sent" if i < 6 else "failed")
            treated.append((b, e))
        held = []
        for _ in range(5):
            b = business(conn, "35238")
            held.append((b, enrol(conn, campaign_id, b, arm="holdout")[0]))
        # Contacted adopters: one with two categories, one twice the same; an adopter not contacted; two held.
        _adopt(conn, campaign_id, *treated[0], "payment", later)
        _adopt(conn, campaign_id, *treated[0], "booking", later)
        _adopt(conn, campaign_id, *treated[1], "payment", later)
        _adopt(conn, campaign_id, *treated[1], "payment", later + dt.timedelta(days=1))
        _adopt(conn, campaign_id, *treated[7], "management", later)
        _adopt(conn, campaign_id, *held[0], "payment", later)
        _adopt(conn, campaign_id, *held[1], "online_visibility", later)

    def current(live: bool = False):
        with engine.connect() as conn:
            return report(engine, campaign_by_name(conn, "bienvenue-35"), live=live)

    def adoption(r) -> list:
        return [r.table(k).rows for k in ("adoption", "adoption_uplift", "adoption_by_category")]

    first = current()
    assert first.source == "live"
    by_arm = {row["arm"]: (row["n"], row["adopted"]) for row in first.table("adoption").rows}
    assert by_arm == {"Contactés": (6, 2), "Tous les ciblés": (8, 3), "Témoin (non contactés)": (5, 2)}
    by_category = {row["category"]: (row["treated"], row["control"])
                   for row in first.table("adoption_by_category").rows}
    assert by_category == {"paiement": (2, 1), "prise de rendez-vous": (1, 0), "gestion": (1, 0),
                           "visibilité en ligne": (0, 1)}

    refreshed = dt.datetime(2026, 11, 2, 5, 30, tzinfo=dt.UTC)
    refresh_rollup(engine, [campaign_id], now=refreshed)
    rolled = current()
    assert rolled.source == "rollup" and rolled.as_of == refreshed.isoformat(timespec="seconds")
    assert adoption(rolled) == adoption(first) and rolled.adoption_uplift == first.adoption_uplift
    assert [t.rows for t in rolled.tables] == [t.rows for t in current(live=True).tables]

    with engine.begin() as conn:  # after the refresh: a new adopter among the contacted, and one held
        _adopt(conn, campaign_id, *treated[2], "quotes_invoices", later + dt.timedelta(days=2))
        _adopt(conn, campaign_id, *held[2], "quotes_invoices", later + dt.timedelta(days=2))
    assert adoption(current()) == adoption(first)  # the rollup's moment, as the funnel
    live = current(live=True)
    assert {row["arm"]: row["adopted"] for row in live.table("adoption").rows} == {
        "Contactés": 3, "Tous les ciblés": 4, "Témoin (non contactés)": 3}

    client = signed_in(create_app(bootstrap(settings)), _operator(engine))
    page = client.get(f"/tableau/campagnes/{campaign_id}").text
    assert "Chiffres d'adoption arrêtés au 2 nov. 2026, 6 h 30" in page

    refresh_rollup(engine, [campaign_id], now=refreshed + dt.timedelta(days=1))
    assert adoption(current()) == adoption(live)
    with engine.begin() as conn:  # a rollup made before adoption was rolled up: adoption read live beside it
        conn.execute(delete(AdoptionRollup.__table__))
    assert current().source == "rollup" and adoption(current()) == adoption(live)


def _operator(engine) -> str:
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    return "op@declic.fr"
