"""Right to erasure: a business built from Sirene, a partner event and a callback form is exported, erased, and
nothing personal is left in any table; campaign counts stay; the same SIRET and e-mail coming back through
Sirene or a partner produce no message and no contact in clear."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from orchestrator.app import privacy
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.ingest import ingest_sirene
from orchestrator.app.planning import plan_all
from orchestrator.cli.main import app as cli
from store.models import Business, Campaign, Message
from store.report import report
from tests.unit.test_sirene import row, write
from tests.utils.privacy import CALLBACK_PHONE, EMAIL, NOTE, NOW, PHONE, build_business, partner_item, post_events
from web.app import create_app

REFERENCE = {"metierfamily", "nafcode", "commune", "territory", "alembic_version"}


def personal_traces(built) -> list[str]:
    """What must not appear anywhere once erased: SIRET, SIREN, contacts, names, address, free text."""
    digits = lambda phone: phone.replace(" ", "")[1:]  # noqa: E731
    return [built.siret, built.siret[:9], EMAIL, digits(PHONE), digits(CALLBACK_PHONE), "Durand", "DURAND",
            "DE NANTES", "PLOMBERIE DU CENTRE", NOTE[:20], "BGE-2026-117", "apprenti"]


def table_dump(engine) -> dict[str, str]:
    import store.models  # noqa: F401

    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in REFERENCE:
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                out[table.name] = json.dumps(rows, ensure_ascii=False, default=str)
    return out


def aggregates(engine) -> dict:
    with engine.connect() as conn:
        campaigns = conn.execute(select(Campaign.__table__)).all()
    return {c.name: report(engine, c, live=True).funnel for c in campaigns}


def test_erase_leaves_nothing_personal_keeps_counts_and_refuses_the_comeback(env_settings, engine, tmp_path):
    settings = env_settings
    built = build_business(settings, engine, tmp_path)
    exported = privacy.export_business(built.app, built.siret)
    assert exported["entreprise"]["email"] == EMAIL and exported["appels"]
    before = aggregates(engine)
    dump = table_dump(engine)
    assert EMAIL in dump["business"] and NOTE[:20] in dump["calltask"]  # the check below can see them

    result = CliRunner().invoke(cli, ["privacy", "erase", built.siret, "--reason", "demande par courriel du 1/12"])
    assert result.exit_code == 0, result.output
    assert "ne sera plus contactée" in result.output

    for table, text in table_dump(engine).items():
        for trace in personal_traces(built):
            assert trace.lower() not in text.lower(), f"{trace!r} left in table {table}"
    assert aggregates(engine) == before
    with engine.connect() as conn:
        erased = conn.execute(select(Business.__table__)).one()
    assert erased.do_not_contact and erased.email is None and erased.name is None and erased.street is None

    # The same SIRET comes back in a later Sirene file, and a partner sends it again with the same e-mail.
    later = NOW + dt.timedelta(days=2)
    app = bootstrap(settings, clock=lambda: later)
    recent = (later.date() - dt.timedelta(days=5)).isoformat()
    ingest_sirene(engine, write(tmp_path / "again.csv", [row(dateCreationEtablissement=recent)]), today=later.date(),
                  now=NOW)
    with TestClient(create_app(bootstrap(settings))) as client:
        answer = post_events(client, built.token, [partner_item("bge-2", built.siret)])
    assert answer["accepted"] == 1 and answer["withheld"] == 1
    with engine.connect() as conn:
        messages_before = conn.execute(select(Message.__table__.c.id)).scalars().all()
    plan_all(app)
    with engine.connect() as conn:
        assert conn.execute(select(Message.__table__.c.id)).scalars().all() == messages_before
        back = conn.execute(select(Business.__table__).where(Business.__table__.c.siret == built.siret)).one()
    assert back.do_not_contact and back.email is None and back.phone is None
    dump = table_dump(engine)
    for trace in (EMAIL, "612345678", "BGE-2026-117", "Durand"):
        assert trace not in dump["business"] + dump["triggerevent"] + dump["suppression"]


def test_erase_refuses_an_unknown_siret_and_an_empty_reason(env_settings, engine):
    runner = CliRunner()
    result = runner.invoke(cli, ["privacy", "erase", "73282932000074", "--reason", "demande"])
    assert result.exit_code == 2 and "Aucune entreprise" in result.output
    result = runner.invoke(cli, ["privacy", "erase", "7328", "--reason", "demande"])
    assert result.exit_code == 2 and "n'est pas un SIRET" in result.output


def test_a_partner_file_about_an_erased_person_stores_no_contact_in_clear(env_settings, engine, tmp_path):
    built = build_business(env_settings, engine, tmp_path)
    assert CliRunner().invoke(cli, ["privacy", "erase", built.siret, "--reason", "demande"]).exit_code == 0
    path = tmp_path / "bge.csv"
    day = (NOW.date() - dt.timedelta(days=3)).isoformat()
    path.write_text("external_id;type;siret;occurred_on;name;commune_code;email;phone\n"
                    f"bge-9;creation;{built.siret};{day};Plomberie Durand;35238;{EMAIL};{PHONE}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["events", "import", str(path), "--partner", "bge-35", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"]["stored without contacts (erased person)"] == 1
    dump = table_dump(engine)  # at once, not only after the next planning run
    for trace in (EMAIL, PHONE.replace(" ", "")[1:], "Durand"):
        assert trace not in dump["business"] + dump["triggerevent"]
