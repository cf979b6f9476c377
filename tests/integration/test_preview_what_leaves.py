"""Issue 13, point 10, on SQLite and PostgreSQL: `declic templates preview --campaign` shows what the dispatcher
would send that business (the campaign's sender, the ambassador and offers the planner matches, the variant, real
links); without --campaign it says it uses samples."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import outgoing
from orchestrator.app.message_preview import SAMPLE_NOTICE, leaving_message
from orchestrator.app.planning import plan_all
from orchestrator.cli.main import app
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.journeys import import_ambassadors, import_offers
from store.models import Business, Campaign, Message, TriggerEvent
from templates.render import library
from tests.utils.factories import campaign_spec

SAMPLES = Path(__file__).resolve().parents[2] / "orchestrator" / "samples"
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
SIRET = "73282932000074"
LINK = re.compile(r"https?://\S+")


def _world(engine) -> int:
    import_ambassadors(engine, SAMPLES / "ambassadeurs-35.csv", now=dt.datetime.now(dt.UTC))
    import_offers(engine, SAMPLES / "offres-35.csv", now=dt.datetime.now(dt.UTC))
    spec = load_spec(campaign_spec(name="plombiers-35", variants=[{"name": "court", "weight": 1},
                                                                  {"name": "temoignage", "weight": 1}]))
    apply_campaign(engine, spec, now=NOW)
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        business_id = conn.execute(Business.__table__.insert().values(
            siret=SIRET, siren=SIRET[:9], name="Plomberie Le Gall", naf_code="43.22A", metier_family="batiment",
            commune_code="35238", epci_code="243500139", departement_code="35", region_code="53", state="active",
            do_not_contact=False, phone_consent=False, email="legall@exemple.fr", created_at=at,
            updated_at=at)).inserted_primary_key[0]
        conn.execute(TriggerEvent.__table__.insert().values(
            source="test", external_id="ev-1", type="creation", business_id=business_id, siret=SIRET,
            occurred_on=dt.date(2026, 11, 30), received_at=at, status="accepted", planned=False, payload={}))
    return business_id


def test_campaign_preview_is_what_the_dispatcher_sends(env_settings, engine):
    _world(engine)
    result = CliRunner().invoke(app, ["templates", "preview", "email/creation", "--business", SIRET,
                                      "--campaign", "plombiers-35"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Département d'Ille-et-Vilaine" in out and "Privas" not in out and "Aubenas" not in out
    assert "De : Département d'Ille-et-Vilaine <" in out
    assert "Ambassadeur : Yann Le Bihan" in out and "Yann Le Bihan" in out.split("-" * 72)[1]
    assert "Offres : Atelier « mes devis en ligne »; Diagnostic numérique à l'atelier" in out
    assert re.search(r"Variante : (court|temoignage)", out)
    assert env_settings.base_url in out  # real links, not a sample host

    # Planned and handed to the dispatcher: the same text (links differ only by the message number they sign).
    app_ = bootstrap(env_settings, clock=lambda: NOW)
    with engine.connect() as conn:
        row = conn.execute(select(Business.__table__).where(Business.__table__.c.siret == SIRET)).one()
    with engine.connect() as conn:
        campaign = conn.execute(select(Campaign.__table__)).one()
    preview = leaving_message(env_settings, engine, library(), load_spec(campaign.spec), campaign.id, row,
                              "email", "creation", now=NOW)
    assert plan_all(app_)["messages"] == 1
    with engine.connect() as conn:
        planned = conn.execute(select(Message.__table__)).one()
    sent = outgoing(app_, planned)
    assert planned.variant == preview.variant
    assert LINK.sub("LIEN", sent.body) == LINK.sub("LIEN", preview.message.body)
    assert sent.subject == preview.message.subject
    # Once planned, the preview shows the stored message itself.
    again = leaving_message(env_settings, engine, library(), load_spec(campaign.spec), campaign.id, row,
                            "email", "creation", now=NOW)
    assert again.planned_id == planned.id and again.message.body == sent.body


def test_preview_without_campaign_says_it_uses_samples(env_settings, engine):
    _world(engine)
    result = CliRunner().invoke(app, ["templates", "preview", "sms/creation", "--business", SIRET])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == SAMPLE_NOTICE
    result = CliRunner().invoke(app, ["templates", "preview", "email/creation", "--business", SIRET,
                                      "--campaign", "inconnue"])
    assert result.exit_code == 1 and "Campagne inconnue" in result.output


def test_dashboard_campaign_preview_takes_the_same_path(settings, engine):
    from web.campaign_form import preview

    _world(engine)
    with engine.connect() as conn:
        campaign = conn.execute(select(Campaign.__table__)).one()
    sample = preview(bootstrap(settings), load_spec(campaign.spec), campaign.id)["sample"]
    assert "Ambassadeur : Yann Le Bihan" in sample["details"]
    assert "Yann Le Bihan" in sample["body"] and settings.base_url in sample["body"]
    assert sample["template"].startswith("email/creation/default.")  # the business's variant
