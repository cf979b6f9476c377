"""The campaign editor covers what the YAML covers (issue 19, point 4), on SQLite and PostgreSQL: territory by
name, trades, a reminder if no click, a schedule from the French recurrence picker, steps added and removed by
submit buttons, errors in French field by field, and an edit that shows what changes and the reach before and
after; a stored campaign goes through the form and back unchanged."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import load_spec
from store.accounts import add_user
from store.admin import apply_campaign
from store.models import Business, Campaign
from tests.utils.outreach import business
from web.app import create_app
from web.campaign_form import form_from_spec

PASSWORD = "un-mot-de-passe-solide"
CAMPAIGNS = Campaign.__table__
SAMPLES = Path(__file__).resolve().parents[2] / "orchestrator" / "samples"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def app(settings, engine):
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    add_user(engine, email="agent@ille-et-vilaine.fr", name="Département d'Ille-et-Vilaine", password=PASSWORD,
             role="collectivite", territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))
    return create_app(bootstrap(settings))


def signed_in(app, email: str) -> TestClient:
    client = TestClient(app)
    reply = client.post("/connexion", follow_redirects=False, data={
        "email": email, "password": PASSWORD, "csrf": csrf_of(client.get("/connexion").text)})
    assert reply.status_code == 303, reply.text
    return client


def editor_form(page: str, **fields) -> dict:
    base = {
        "csrf": csrf_of(page), "editeur": "2", "name": "batiment-rennes", "title": "Bâtiment à Rennes",
        "owner_name": "Département d'Ille-et-Vilaine", "sender_name": "Département d'Ille-et-Vilaine",
        "sender_address": "1 avenue de la Préfecture, 35042 Rennes", "contact_name": "Claire Le Goff",
        "triggers": ["creation"], "families": ["batiment"], "segment_territory": "Rennes Métropole",
        "steps_count": "2",
        "step0_channel": "email", "step0_delay": "2", "step0_template": "creation", "step0_fallback_mode": "defaut",
        "step1_channel": "email", "step1_delay": "7", "step1_template": "creation", "step1_if": "no_click",
        "step1_fallback_mode": "aucun",
        "schedule_start": "2027-01-05", "schedule_time": "09:00", "rec_every": "mois", "rec_day_kind": "rang",
        "rec_rank": "1", "rec_weekday": "1", "rec_monthday": "1",
        "headcount": ["0", "1-2"], "age_max": "1", "age_max_unit": "y", "stages": ["creation"],
        "cap0_messages": "2", "cap0_days": "30", "max_defer": "10", "holdout": "10",
        "variants": ["court", "temoignage"], "weight_court": "1", "weight_temoignage": "2",
        "action": "apercu",
    }
    return {**base, **fields}


def test_a_campaign_on_rennes_metropole_with_a_reminder_if_no_click(app, engine):
    with engine.begin() as conn:  # a young plumber in Bruz: the sample business of the segment
        bid = business(conn, "35047")
        conn.execute(Business.__table__.update().where(Business.__table__.c.id == bid).values(
            tranche_effectifs="00", lifecycle_stage="creation", creation_date=dt.date.today() - dt.timedelta(days=30)))
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    assert '<option value="Rennes Métropole">' in page.text and '<option value="Bruz">' in page.text
    assert '<option value="Privas">' not in page.text  # completion stays inside the user's territory
    preview = client.post("/tableau/campagnes/nouvelle", data=editor_form(page.text))
    assert preview.status_code == 200, preview.text
    assert "Calendrier : le premier mardi de chaque mois" in preview.text
    assert "Exemple de message pour Plomberie Durand" in preview.text
    assert "Message 2 (e-mail, « Création »)" in preview.text and preview.text.count('<pre class="preview">') == 2
    saved = client.post("/tableau/campagnes/nouvelle", follow_redirects=False,
                        data=editor_form(page.text, action="enregistrer"))
    assert saved.status_code == 303, saved.text
    with engine.connect() as conn:
        spec = conn.execute(select(CAMPAIGNS.c.spec).where(CAMPAIGNS.c.name == "batiment-rennes")).scalar_one()
    assert spec["segment"]["territory"]["epci"] == ["243500139"]
    assert spec["segment"]["families"] == ["batiment"] and spec["segment"]["headcount"] == ["0", "1-2"]
    assert spec["segment"]["age"]["max"] == "1y" and spec["segment"]["stages"] == ["creation"]
    assert [s["condition"] for s in spec["steps"]] == [None, "no_click"]
    assert [s["delay"] for s in spec["steps"]] == ["2d", "7d"] and spec["steps"][1]["fallback"] == []
    assert spec["schedule"]["rrule"] == "RRULE:FREQ=MONTHLY;BYDAY=1TU"
    assert spec["pressure"]["caps"] == [{"messages": 2, "days": 30}] and spec["pressure"]["max_defer"] == "10d"
    assert spec["variants"] == [{"name": "court", "weight": 1}, {"name": "temoignage", "weight": 2}]


def test_steps_are_added_and_removed_without_javascript(app):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    assert 'name="step1_channel"' not in page.text and "Ajouter une étape" in page.text
    fields = editor_form(page.text, steps_count="1", action="ajouter-etape")
    for key in [k for k in fields if k.startswith("step1_")]:
        fields.pop(key)
    added = client.post("/tableau/campagnes/nouvelle", data=fields)
    assert added.status_code == 200 and 'name="step1_channel"' in added.text and "Aperçu" not in added.text
    assert re.search(r'<option value="no_click" selected>Si pas de clic', added.text)  # a reminder by default
    removed = client.post("/tableau/campagnes/nouvelle", data=editor_form(page.text, action="retirer-0"))
    assert 'name="step1_channel"' not in removed.text
    assert 'id="step0_if"' not in removed.text  # the step moved up is the first: no condition


def test_errors_are_french_sentences_field_by_field(app):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    reply = client.post("/tableau/campagnes/nouvelle", data=editor_form(
        page.text, name="Pas Valide", segment_territory="Nulle-Part-sur-Mer", action="enregistrer"))
    assert reply.status_code == 400
    assert '<a href="#segment_territory">Territoire</a> : Territoire inconnu : « Nulle-Part-sur-Mer »' in reply.text
    reply = client.post("/tableau/campagnes/nouvelle", data=editor_form(
        page.text, name="Pas Valide", contact_name="", action="enregistrer"))
    assert '<a href="#name">Nom court</a> : lettres minuscules' in reply.text
    assert '<a href="#contact_name">Contact</a>' not in reply.text or "à remplir" in reply.text
    missing = client.post("/tableau/campagnes/nouvelle", data=editor_form(
        page.text, step1_channel="sms", step1_template="nexistepas", action="enregistrer"), follow_redirects=False)
    assert missing.status_code == 400 and '<a href="#step1_template">Étape 2 : message</a>' in missing.text
    for english in ("Field required", "String should", "pydantic", "Value error", "Traceback"):
        assert english not in reply.text + missing.text


def test_an_edit_shows_what_changes_and_the_reach_before_and_after(app, engine):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    client.post("/tableau/campagnes/nouvelle", data=editor_form(page.text, action="enregistrer"))
    with engine.connect() as conn:
        cid = conn.execute(select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.name == "batiment-rennes")).scalar_one()
    edit = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
    assert 'value="Rennes Métropole"' in edit.text
    assert 'id="rec-rang" name="rec_day_kind" value="rang" checked' in edit.text  # the picker shows the rule
    reply = client.post("/tableau/campagnes/nouvelle", data=editor_form(
        edit.text, depuis=str(cid), holdout="20", segment_territory="Ille-et-Vilaine", rec_day_kind="date",
        rec_monthday="15"))
    assert reply.status_code == 200, reply.text
    table = re.search(r'<table id="t-changements">.*?</table>', reply.text, re.S).group(0)
    assert "<th scope=\"row\">Groupe témoin</th><td>10 %</td><td>20 %</td>" in table
    assert "<td>Rennes Métropole</td><td>Ille-et-Vilaine</td>" in table
    assert "le premier mardi de chaque mois" in table and "le 15 de chaque mois" in table
    assert "Titre" not in table  # unchanged lines are not listed
    assert "avant la modification :" in reply.text


def test_a_stored_campaign_goes_through_the_form_unchanged(app, engine):
    """The sample journey and the quarterly schedule, opened in the editor and saved as they are."""
    client = signed_in(app, "op@declic.fr")
    for sample in ("parcours-batiment-35.yaml", "atelier-trimestriel-35.yaml"):
        spec = load_spec(yaml.safe_load((SAMPLES / sample).read_text(encoding="utf-8")))
        cid = apply_campaign(engine, spec, now=dt.datetime.now(dt.UTC))[0]
        page = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
        assert page.status_code == 200
        with engine.connect() as conn:
            before = conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == cid)).one()
        form = {**form_from_spec(before.spec), "csrf": csrf_of(page.text), "depuis": str(cid),
                "action": "enregistrer"}
        saved = client.post("/tableau/campagnes/nouvelle", data=form, follow_redirects=False)
        assert saved.status_code == 303, saved.text
        with engine.connect() as conn:
            after = conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == cid)).one()
        assert after.spec == before.spec and after.version == before.version, sample


def test_the_legal_form_is_chosen_in_plain_words_and_a_written_code_is_kept(app, engine):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    assert '<label for="fj-1">Entreprise individuelle (micro-entreprise comprise)</label>' in page.text
    client.post("/tableau/campagnes/nouvelle", data=editor_form(page.text, action="enregistrer"))
    with engine.connect() as conn:
        cid = conn.execute(select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.name == "batiment-rennes")).scalar_one()
    edit = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
    fields = editor_form(edit.text, depuis=str(cid), legal_forms=["1", "57"])
    reply = client.post("/tableau/campagnes/nouvelle", data=fields)
    assert ('<th scope="row">Forme juridique</th><td>toutes</td><td>Entreprise individuelle (micro-entreprise '
            'comprise), SAS ou SASU</td>') in reply.text, reply.text
    saved = client.post("/tableau/campagnes/nouvelle", follow_redirects=False, data={**fields, "action": "enregistrer"})
    assert saved.status_code == 303, saved.text
    with engine.begin() as conn:  # a full code written in the campaign's YAML, which the page does not offer
        spec = conn.execute(select(CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id == cid)).scalar_one()
        assert spec["segment"]["legal_forms"] == ["1", "57"]
        spec = {**spec, "segment": {**spec["segment"], "legal_forms": ["1", "5710"]}}
        conn.execute(CAMPAIGNS.update().where(CAMPAIGNS.c.id == cid).values(spec=spec))
    edit = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
    assert re.search(r'value="5710" checked><label for="fj-\d+">Société par actions simplifiée \(SAS\) \(5710\)',
                     edit.text), edit.text
    assert 'value="57" checked' not in edit.text and 'value="1" checked' in edit.text
    kept = client.post("/tableau/campagnes/nouvelle", follow_redirects=False, data={
        **form_from_spec(spec), "csrf": csrf_of(edit.text), "depuis": str(cid), "action": "enregistrer"})
    assert kept.status_code == 303, kept.text
    with engine.connect() as conn:
        assert conn.execute(select(CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id == cid)).scalar_one()[
            "segment"]["legal_forms"] == ["1", "5710"]
    tampered = client.post("/tableau/campagnes/nouvelle", data=editor_form(page.text, legal_forms=["59"],
                                                                           action="enregistrer"))
    assert tampered.status_code == 400
    assert '<a href="#f-forme-juridique">Forme juridique</a> : catégories juridiques inconnues: 59' in tampered.text
