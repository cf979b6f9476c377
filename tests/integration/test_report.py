"""Metrics queries, the nightly rollup, conversion attribution and `declic report`, on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from store.admin import add_partner
from store.models import Business, Interaction
from store.report import campaign_by_name, live_rows, refresh_rollup, report
from tests.utils.outreach import T0, business, campaign, enrol, seed_funnel
from web.app import create_app

INTERACTIONS = Interaction.__table__


def test_live_funnel_counts_enrollments_per_arm(engine):
    """10 treated (6 clicked, 3 responded, 2 converted), 5 held back (1 converted)."""
    seed_funnel(engine)
    with engine.connect() as conn:
        row = campaign_by_name(conn, "bienvenue-35")
    r = report(engine, row)
    t, h = r.funnel["treatment"], r.funnel["holdout"]
    assert (t.targeted, t.contacted, t.delivered, t.clicked, t.responded, t.converted) == (
        10,
        10,
        10,
        6,
        3,
        2,
    )
    assert (h.targeted, h.contacted, h.clicked, h.converted) == (5, 0, 0, 1)
    assert t.mean_days_to_conversion == pytest.approx(3.0, abs=1e-3)
    assert r.uplift.difference == pytest.approx(2 / 10 - 1 / 5)
    assert r.source == "live"
    assert [v.variant for v in r.variants] == ["A", "B"]
    commune = r.table("by_commune_code").rows
    assert (
        commune[0]["label"] == "Rennes"
        and commune[0]["targeted"] == 10
        and commune[0]["holdout_targeted"] == 5
    )
    assert r.table("by_departement_code").rows[0]["label"] == "Ille-et-Vilaine"


def test_rollup_gives_the_same_rows_as_live(engine):
    seed_funnel(engine)
    seed_funnel(
        engine,
        name="ardeche-07",
        departement="07",
        commune_code="07186",
        treatment=4,
        holdout=2,
        clicks=1,
        responses=1,
        conversions_t=1,
        conversions_h=0,
    )
    with engine.connect() as conn:
        rows_35 = sorted(live_rows(conn, campaign_by_name(conn, "bienvenue-35").id), key=repr)
    assert refresh_rollup(engine, now=dt.datetime.now(dt.UTC)) > 0
    with engine.connect() as conn:
        row = campaign_by_name(conn, "bienvenue-35")
    rolled = report(engine, row)
    assert rolled.source == "rollup" and rolled.as_of
    live = report(engine, row, live=True)
    assert rolled.funnel == live.funnel
    assert [t.rows for t in rolled.tables] == [t.rows for t in live.tables]
    with engine.connect() as conn:
        assert sorted(live_rows(conn, row.id), key=repr) == rows_35


def test_partner_conversions_go_to_the_latest_enrollment_even_in_the_holdout(engine, settings):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        b = business(conn, "35238")
        first, _ = enrol(conn, campaign_id, b, arm="treatment", trigger="creation", at=T0)
        latest, _ = enrol(
            conn, campaign_id, b, arm="holdout", trigger="first_hire", at=T0 + dt.timedelta(days=1)
        )
        siret = conn.execute(
            select(Business.__table__.c.siret).where(Business.__table__.c.id == b)
        ).scalar_one()
    token = add_partner(engine, "cma", ["offer_enrolled", "ambassador_met"], now=dt.datetime.now(dt.UTC))
    item = {
        "external_id": "cma-1",
        "type": "offer_enrolled",
        "siret": siret,
        "occurred_on": (T0 + dt.timedelta(days=10)).date().isoformat(),
    }
    with TestClient(create_app(bootstrap(settings))) as client:
        for _ in range(2):  # the same event twice is attributed once
            reply = client.post(
                "/api/v1/events", json={"events": [item]}, headers={"Authorization": f"Bearer {token}"}
            )
            assert reply.status_code == 200
    with engine.connect() as conn:
        rows = conn.execute(select(INTERACTIONS)).all()
    assert len(rows) == 1
    assert (
        rows[0].kind == "offer_enrolled"
        and rows[0].enrollment_id == latest
        and rows[0].enrollment_id != first
    )
    assert rows[0].campaign_id == campaign_id and rows[0].trigger_event_id is not None
    with engine.connect() as conn:
        r = report(engine, campaign_by_name(conn, "bienvenue-35"))
    assert r.funnel["holdout"].converted == 1 and r.funnel["treatment"].converted == 0


def test_report_command_prints_json_csv_and_a_french_table(engine, env_settings):
    seed_funnel(engine)
    runner = CliRunner()
    out = runner.invoke(cli, ["report", "--campaign", "bienvenue-35", "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["funnel"]["treatment"]["converted"] == 2 and data["funnel"]["holdout"]["targeted"] == 5
    assert data["uplift"]["difference"] == pytest.approx(0.0)
    assert data["uplift"]["ci95"][0] < 0 < data["uplift"]["ci95"][1] and not data["uplift"]["significant"]

    out = runner.invoke(cli, ["report", "-c", "bienvenue-35", "-f", "csv", "--table", "by_metier_family"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert (
        rows[0]["Valeur"] == "batiment"
        and rows[0]["Ciblées"] == "10"
        and rows[0]["Taux de conversion"] == "0.2"
    )

    out = runner.invoke(cli, ["report", "-c", "bienvenue-35"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    assert "20,0\u00a0%" in out.output and "Entonnoir" in out.output

    assert runner.invoke(cli, ["report", "-c", "nope"]).exit_code == 1
    out = runner.invoke(cli, ["report", "--refresh"])
    assert out.exit_code == 0 and "Agrégats recalculés" in out.output
    out = runner.invoke(cli, ["report", "-c", "bienvenue-35", "-f", "json"])
    assert json.loads(out.output)["source"] == "rollup"


def test_users_add_command(engine, env_settings):
    runner = CliRunner()
    ok = runner.invoke(
        cli,
        [
            "users",
            "add",
            "Agent@Rennes.fr",
            "--name",
            "Agent",
            "--role",
            "collectivite",
            "--territory",
            "departements:35",
            "--password",
            "un-mot-de-passe",
        ],
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        cli,
        ["users", "add", "x@y.fr", "--name", "X", "--role", "collectivite", "--password", "un-mot-de-passe"],
    )
    assert bad.exit_code == 2 and "territoire" in bad.output
