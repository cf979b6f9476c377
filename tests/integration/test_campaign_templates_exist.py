"""Templates and variants that exist (issue 13, point 9): `declic campaigns apply` and the dashboard form refuse a
step whose template does not exist or a variant without its template, naming the step; the shipped testimony
variant makes the two arms of the sample campaign differ. On SQLite and PostgreSQL."""

from __future__ import annotations

import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.core.campaign_spec import load_spec
from store.models import Campaign
from templates.preview import sample_context
from templates.render import library

SAMPLE = "orchestrator/samples/parcours-batiment-35.yaml"


def _apply(tmp_path, monkeypatch, settings, document: dict):
    from orchestrator.cli.main import app

    monkeypatch.setenv("DECLIC_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("DECLIC_HOME", str(settings.home))
    path = tmp_path / "campagne.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return CliRunner().invoke(app, ["campaigns", "apply", str(path)])


def test_apply_refuses_a_missing_template_and_a_variant_without_one(tmp_path, monkeypatch, settings, engine):
    document = yaml.safe_load(open(SAMPLE, encoding="utf-8"))
    document["steps"][1]["template"] = "inexistant"
    result = _apply(tmp_path, monkeypatch, settings, document)
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2 and "étape 2 (email, modèle « inexistant ») : ce modèle n'existe pas" in said
    document["steps"][1]["template"] = "creation"
    document["variants"].append({"name": "sans-modele", "weight": 1})
    result = _apply(tmp_path, monkeypatch, settings, document)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "la variante « sans-modele » n'a pas de modèle" in said
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Campaign.__table__)).scalar() == 0
    document["variants"].pop()
    result = _apply(tmp_path, monkeypatch, settings, document)
    assert result.exit_code == 0, result.output


def test_the_testimony_variant_differs_and_a_peer_tells_what_changed():
    spec = load_spec(SAMPLE)
    assert {v.name for v in spec.variants} == {"court", "temoignage"}
    lib = library()
    ctx = sample_context("batiment", "creation")
    ctx["ambassador"]["role"] = "pair"
    plain = lib.render(lib.resolve("email", "creation", "batiment"), ctx).body
    bodies = {}
    for variant in ("court", "temoignage"):
        for channel in ("email", "letter"):
            name = lib.resolve(channel, "creation", "batiment", variant)
            assert name == f"{channel}/creation/default.{variant}.j2"
            bodies[channel, variant] = lib.render(name, ctx).body
    story = bodies["email", "temoignage"]
    assert "Sophie Martin, plombière à Aubenas, raconte ce qui a changé : « " in story
    assert "06 12 34 56 78" in story and story != plain and bodies["email", "court"] != plain
    assert len(bodies["email", "court"]) < len(plain)
    ctx["ambassador"]["role"] = "conseiller"  # an adviser never testifies as a peer
    assert "raconte" not in lib.render("email/creation/default.temoignage.j2", ctx).body
