"""Records of processing (art. 30): `declic privacy register --owner NAME` writes, in French Markdown, one entry per
campaign of that owner from the store and the campaign spec."""

from __future__ import annotations

from typer.testing import CliRunner

from orchestrator.cli.main import app as cli
from tests.utils.privacy import build_business


def test_register_has_one_entry_per_campaign_of_the_owner(env_settings, engine, tmp_path):
    build_business(env_settings, engine, tmp_path)
    out = tmp_path / "registre.md"
    result = CliRunner().invoke(cli, ["privacy", "register", "--owner", "Département d'Ille-et-Vilaine",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Registre des traitements : Département d'Ille-et-Vilaine")
    assert text.count("## Campagne") == 1 and "(bienvenue-35)" in text
    for part in ("**Finalité**", "**Base légale**", "**Personnes concernées**", "**Données**", "**Sources**",
                 "**Destinataires**", "**Durées de conservation**", "**Sécurité**"):
        assert part in text
    assert "partenaire bge-35" in text and "1095 jours" in text and "création" in text
    result = CliRunner().invoke(cli, ["privacy", "register", "--owner", "Personne"])
    assert result.exit_code == 2 and "Aucune campagne" in result.output
