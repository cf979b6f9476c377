"""Audit trail: every dashboard view of a business, every CSV and privacy export, every erasure is appended (who,
when, what, role, territory); `declic audit --since ... [--user EMAIL]` lists them; operators see them on the
dashboard, and only operators download a business's privacy export."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from store.accounts import add_user
from store.models import AuditEntry, Business
from tests.integration.test_web_dashboard import PASSWORD, signed_in
from tests.utils.privacy import EMAIL, build_business
from web.app import create_app


def test_views_exports_and_erasure_are_logged_and_listed(env_settings, engine, tmp_path):
    built = build_business(env_settings, engine, tmp_path)
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    add_user(engine, email="agent@ille-et-vilaine.fr", name="Département", password=PASSWORD,
             role="collectivite", territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        business_id = conn.execute(select(Business.__table__.c.id)).scalar_one()
    web = create_app(bootstrap(env_settings))

    agent = signed_in(web, "agent@ille-et-vilaine.fr")
    assert agent.get(f"/tableau/entreprises/{business_id}").status_code == 200
    assert agent.get(f"/tableau/entreprises/{business_id}/historique.csv").status_code == 200
    assert agent.get(f"/tableau/entreprises/{business_id}/donnees.json").status_code == 403
    assert agent.get("/tableau/journal").status_code == 403

    operator = signed_in(web, "op@declic.fr")
    page = operator.get(f"/tableau/entreprises/{business_id}")
    assert f"/tableau/entreprises/{business_id}/donnees.pdf" in page.text
    exported = operator.get(f"/tableau/entreprises/{business_id}/donnees.json")
    assert exported.status_code == 200 and json.loads(exported.text)["entreprise"]["email"] == EMAIL
    assert operator.get(f"/tableau/entreprises/{business_id}/donnees.pdf").content.startswith(b"%PDF")

    runner = CliRunner()
    assert runner.invoke(cli, ["privacy", "export", built.siret, "-o", str(tmp_path / "e.json")]).exit_code == 0
    assert runner.invoke(cli, ["privacy", "erase", built.siret, "--reason", "demande écrite"]).exit_code == 0

    with engine.connect() as conn:
        rows = conn.execute(select(AuditEntry.__table__).order_by(AuditEntry.__table__.c.id)).all()
    seen = [(r.actor, r.role, r.action) for r in rows]
    assert seen[:3] == [("agent@ille-et-vilaine.fr", "collectivite", "view_business"),
                        ("agent@ille-et-vilaine.fr", "collectivite", "export_csv"),
                        ("op@declic.fr", "operator", "view_business")]
    assert rows[0].territory == {"departements": ["35"]} and rows[0].target == f"business:{business_id}"
    assert [a for _, _, a in seen[3:]] == ["privacy_export", "privacy_export", "privacy_export", "erase"]
    assert seen[-1][0].startswith("cli:") and rows[-1].detail["reason"] == "demande écrite"

    listed = runner.invoke(cli, ["audit", "--since", "2026-01-01", "--user", "agent@ille-et-vilaine.fr", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["action"] for r in json.loads(listed.output)] == ["export_csv", "view_business"]
    assert "effacement" in runner.invoke(cli, ["audit", "--since", "2026-01-01"]).output
    assert "Aucune entrée" in runner.invoke(cli, ["audit", "--since", "2099-01-01"]).output
    journal = operator.get("/tableau/journal?utilisateur=op@declic.fr")
    assert journal.status_code == 200 and "export des données personnelles" in journal.text
    assert "consultation d&#39;une entreprise" in journal.text or "consultation d'une entreprise" in journal.text
