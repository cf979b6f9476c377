"""Right of access: `declic privacy export SIRET` gathers everything held about a business built through the real
doors (Sirene, a partner event, a sent e-mail, a callback request), with the source and date of each fact."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orchestrator.app import privacy
from orchestrator.cli.main import app as cli
from tests.utils.privacy import CALLBACK_PHONE, EMAIL, NOTE, build_business


def test_export_holds_identity_sources_messages_and_the_callback(settings, engine, tmp_path):
    built = build_business(settings, engine, tmp_path)
    data = privacy.export_business(built.app, built.siret)

    assert data["siret"] == built.siret
    assert data["entreprise"]["email"] == EMAIL
    sources = {s["donnée"]: s for s in data["sources"]}
    assert sources["e-mail"]["source"] == "partenaire bge-35" and sources["e-mail"]["date"]
    assert sources["identité (nom, activité, commune)"]["source"] == "répertoire Sirene (INSEE)"
    assert {e["source"] for e in data["événements"]} == {"répertoire Sirene (INSEE)", "partenaire bge-35"}
    partner_event = next(e for e in data["événements"] if e["source"] == "partenaire bge-35")
    assert partner_event["détails"] == {"note": "Mme Le Goff le suit, a un apprenti"}  # declared fields only
    sent = [m for m in data["messages"] if m["statut"] == "sent"]
    assert sent and sent[0]["destinataire"] == EMAIL and "plomb" in sent[0]["texte"].lower()
    assert "/u/" in sent[0]["texte"]  # the text as it left, unsubscribe link included
    assert sent[0]["campagne"] == "bienvenue-35" and sent[0]["historique"]
    assert [i["type"] for i in data["interactions"]] == ["callback_request"]
    assert data["appels"][0]["numéro"] == "+33698765432" and data["appels"][0]["note"] == NOTE
    assert data["inscriptions"][0]["campagne"] == "bienvenue-35"
    assert CALLBACK_PHONE and json.dumps(data, ensure_ascii=False)  # plain JSON all the way


def test_cli_writes_json_and_pdf(env_settings, engine, tmp_path):
    built = build_business(env_settings, engine, tmp_path)
    runner = CliRunner()
    out = tmp_path / "export.json"
    result = runner.invoke(cli, ["privacy", "export", built.siret, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["entreprise"]["email"] == EMAIL
    pdf = tmp_path / "export.pdf"
    result = runner.invoke(cli, ["privacy", "export", built.siret, "--format", "pdf", "--output", str(pdf)])
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    result = runner.invoke(cli, ["privacy", "export", "12345678901234"])
    assert result.exit_code == 2 and "Aucune entreprise" in result.output
