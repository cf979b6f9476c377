"""`declic segments preview`, `declic ambassadors import`, `declic offers import` through the real CLI."""

from __future__ import annotations

import datetime as dt

from typer.testing import CliRunner

from orchestrator.cli.main import app
from store.models import Business
from tests.integration.test_journeys import AMBASSADORS, OFFERS


def test_preview_import_and_refusals(env_settings, engine, tmp_path):
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(Business.__table__.insert(), [
            dict(siret=f"{i:014d}", siren=f"{i:09d}", metier_family=fam, departement_code=dep, state="active",
                 do_not_contact=False, phone_consent=False, email="x@y.fr" if i % 2 else None,
                 created_at=now, updated_at=now)
            for i, (fam, dep) in enumerate([("batiment", "35")] * 3 + [("alimentation", "35"), ("batiment", "29")])])
    seg = tmp_path / "segment.yaml"
    seg.write_text("families: [batiment]\nterritory: {departements: ['35', '29']}\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["segments", "preview", str(seg)])
    assert result.exit_code == 0, result.output
    assert "Bâtiment" in result.output and "Total: 4 entreprises" in result.output.replace("\u202f", "")

    campaign = tmp_path / "campagne.yaml"
    campaign.write_text("""name: test-35
owner: {name: Département, territory: {departements: ['35']}}
sender: {name: Département, address: Rennes}
contact: {name: Claire}
triggers: [creation]
segment: {families: [batiment], reachable: [email]}
steps: [{template: creation}]
""", encoding="utf-8")
    result = runner.invoke(app, ["segments", "preview", str(campaign), "--by", "family"])
    assert result.exit_code == 0, result.output
    assert "Total: 1 entreprises" in result.output.replace("\u202f", "")  # the owner's territory applies

    bad = tmp_path / "mauvais.yaml"
    bad.write_text("families: [plomberie]\nzone: [35]\n", encoding="utf-8")
    result = runner.invoke(app, ["segments", "preview", str(bad)])
    assert result.exit_code == 2 and "plomberie" in result.output and "zone" in result.output

    ambassadors = tmp_path / "ambassadeurs.csv"
    ambassadors.write_text(AMBASSADORS, encoding="utf-8")
    result = runner.invoke(app, ["ambassadors", "import", str(ambassadors)])
    assert result.exit_code == 0 and "2 importé(s)" in result.output and "ligne 5, champ families" in result.output
    offers = tmp_path / "offres.csv"
    offers.write_text(OFFERS, encoding="utf-8")
    result = runner.invoke(app, ["offers", "import", str(offers)])
    assert result.exit_code == 0 and "3 importé(s)" in result.output and "ligne 5, champ kind" in result.output
