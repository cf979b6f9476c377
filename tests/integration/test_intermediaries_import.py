"""`declic intermediaries import` and `declic intermediaries clients` through the real CLI (issue 16, point 1)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.cli.main import app
from store.intermediaries import relays_for
from store.models import Intermediary, IntermediaryClient
from tests.utils.factories import siret

INTERMEDIARIES = """key;name;kind;email;phone;commune;territory
cabinet-durand;Cabinet Durand Expertise;cabinet_comptable;Contact@Durand-Expertise.fr;0299000001;35238;epci:243500139
cma-35;CMA Ille-et-Vilaine;cma;conseil@cma35.fr;;;departement:35
;Sans clé;banque;a@b.fr;;;
banque-x;Banque X;courtier;a@b.fr;;;
asso-y;Association Y;association;;;;
asso-z;Association Z;association;z@asso.fr;;99999;
"""


def test_import_intermediaries_and_their_clients_with_line_rejects(env_settings, engine, tmp_path):
    runner = CliRunner()
    registry = tmp_path / "intermediaires.csv"
    registry.write_text(INTERMEDIARIES, encoding="utf-8")
    result = runner.invoke(app, ["intermediaries", "import", str(registry)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Intermédiaires: 2 importé(s), 4 ligne(s) refusée(s)" in out
    assert "ligne 4, champ key: identifiant manquant" in out
    assert "ligne 5, champ kind: type inconnu: 'courtier'" in out
    assert "ligne 6, champ email: e-mail manquant" in out
    assert "ligne 7, champ commune: code commune inconnu: 99999" in out
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(Intermediary.__table__))}
    assert set(rows) == {"cabinet-durand", "cma-35"}
    assert rows["cabinet-durand"].email == "contact@durand-expertise.fr"
    assert rows["cabinet-durand"].territory == ["epci:243500139"]

    a, b, c = siret(), siret(), siret()
    clients = tmp_path / "clients-durand.csv"
    clients.write_text(f"intermediary;siret;source;date\ncabinet-durand;{a};;2026-10-01\n"
                       f"cabinet-durand;{b};Ordre des experts-comptables;15/11/2026\n"
                       f"cma-35;{b};;2026-11-20\ninconnu;{c};;\ncabinet-durand;12345678901234;;\n"
                       f"cabinet-durand;{c};;hier\n", encoding="utf-8")
    result = runner.invoke(app, ["intermediaries", "clients", str(clients)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "3 importé(s), 3 ligne(s) refusée(s)" in out
    assert "ligne 5, champ intermediary: intermédiaire inconnu: inconnu" in out
    assert "ligne 6, champ siret: SIRET invalide" in out
    assert "ligne 7, champ date: date illisible" in out
    with engine.connect() as conn:
        links = {(r.siret, r.intermediary_id): r for r in conn.execute(select(IntermediaryClient.__table__))}
        ids = dict(conn.execute(select(Intermediary.__table__.c.key, Intermediary.__table__.c.id)).all())
        # A business served by two: the most recent link wins.
        assert relays_for(conn, [a, b, c]) == {a: "contact@durand-expertise.fr", b: "conseil@cma35.fr"}
    first = links[(a, ids["cabinet-durand"])]
    assert first.source == "clients-durand.csv" and first.linked_on == dt.date(2026, 10, 1)
    assert links[(b, ids["cabinet-durand"])].source == "Ordre des experts-comptables"
    assert links[(b, ids["cabinet-durand"])].linked_on == dt.date(2026, 11, 15)

    # Re-importing updates by key; a file of nothing but rejects fails.
    registry.write_text("key;name;kind;email\ncma-35;CMA 35;cma;nouveau@cma35.fr\n", encoding="utf-8")
    assert runner.invoke(app, ["intermediaries", "import", str(registry)]).exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(select(Intermediary.__table__.c.email)
                            .where(Intermediary.__table__.c.key == "cma-35")).scalar() == "nouveau@cma35.fr"
    clients.write_text("intermediary;siret\ninconnu;123\n", encoding="utf-8")
    result = runner.invoke(app, ["intermediaries", "clients", str(clients)])
    assert result.exit_code == 2
