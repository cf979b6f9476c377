"""A collectivité never takes over another's campaign from the dashboard (issue 14, finding 2), on SQLite
and PostgreSQL: only the owner (or an operator) edits, "copy from" makes a new campaign under the copier's
name, and the owner changes only by an operator after the preview showed it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import load_spec
from store.accounts import add_user
from store.admin import apply_campaign
from store.models import Campaign
from tests.utils.factories import campaign_spec
from web.app import create_app

PASSWORD = "un-mot-de-passe-solide"
CAMPAIGNS = Campaign.__table__
METROPOLE = {"name": "Rennes Métropole", "territory": {"epci": ["243500139"]}}
VARIANTS = [{"name": "court", "weight": 1}, {"name": "temoignage", "weight": 1}]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def world(engine):
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    add_user(engine, email="agent@ille-et-vilaine.fr", name="Département d'Ille-et-Vilaine", password=PASSWORD,
             role="collectivite", territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))
    add_user(engine, email="agent@rennesmetropole.fr", name="Rennes Métropole", password=PASSWORD,
             role="collectivite", territory={"epci": ["243500139"]}, now=dt.datetime.now(dt.UTC))
    rennes = apply_campaign(engine, load_spec(campaign_spec(
        "parcours-rennes", owner=METROPOLE, title="Parcours Rennes", variants=VARIANTS)),
        now=dt.datetime.now(dt.UTC))[0]
    return {"rennes": rennes}


@pytest.fixture
def app(settings, engine):
    return create_app(bootstrap(settings))


def signed_in(app, email: str) -> TestClient:
    client = TestClient(app)
    reply = client.post("/connexion", follow_redirects=False, data={
        "email": email, "password": PASSWORD, "csrf": csrf_of(client.get("/connexion").text)})
    assert reply.status_code == 303, reply.text
    return client


def row(engine, campaign_id: int):
    with engine.connect() as conn:
        return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id)).one()


def owner(campaign) -> dict:
    """The campaign's owner, its territory without the empty levels."""
    stored = campaign.spec["owner"]
    return {"name": stored["name"], "territory": {k: v for k, v in stored["territory"].items() if v}}


def form(page: str, **fields) -> dict:
    """The fields a person would post after changing only `fields`."""
    base = {
        "csrf": csrf_of(page),
        "title": "Nouveau titre",
        "owner_name": "Rennes Métropole",
        "sender_name": "Rennes Métropole",
        "sender_address": "Hôtel de Rennes Métropole, 35031 Rennes",
        "contact_name": "Claire",
        "triggers": ["creation"],
        "families": ["batiment"],
        "step0_channel": "email",
        "step0_delay": "0d",
        "step0_template": "creation",
        "holdout": "0",
        "action": "enregistrer",
    }
    for name in ("depuis", "copie", "porteur"):
        found = re.search(rf'name="{name}" value="([^"]+)"', page)
        if found:
            base[name] = found.group(1)
    return {**base, **fields}


def test_the_departement_gets_a_copy_never_the_metropole_s_campaign(app, engine, world):
    rid = world["rennes"]
    before = row(engine, rid)
    departement = signed_in(app, "agent@ille-et-vilaine.fr")
    page = departement.get(f"/tableau/campagnes/nouvelle?depuis={rid}")
    assert page.status_code == 200 and "Copier la campagne parcours-rennes" in page.text
    assert 'name="depuis"' not in page.text
    # A forged edit of the campaign it only sees is refused.
    forged = departement.post("/tableau/campagnes/nouvelle", data=form(page.text, depuis=str(rid)))
    assert forged.status_code == 403
    # The copy under the original's name is refused; under a new name it is a new campaign.
    taken = departement.post("/tableau/campagnes/nouvelle", data=form(page.text, name="parcours-rennes"))
    assert taken.status_code == 400 and "déjà pris" in taken.text
    saved = departement.post("/tableau/campagnes/nouvelle", follow_redirects=False,
                             data=form(page.text, name="parcours-35", owner_name="Département 35"))
    assert saved.status_code == 303
    copy_id = int(saved.headers["location"].rsplit("/", 1)[1])
    assert copy_id != rid
    copied = row(engine, copy_id)
    assert copied.name == "parcours-35" and owner(copied)["territory"] == {"departements": ["35"]}
    assert copied.spec["variants"] == VARIANTS  # what the form hides comes along
    after = row(engine, rid)
    assert (after.version, after.spec, after.owner) == (before.version, before.spec, before.owner)
    metropole = signed_in(app, "agent@rennesmetropole.fr")
    assert metropole.get(f"/tableau/campagnes/{rid}").status_code == 200


def test_a_new_campaign_never_reaches_an_existing_one_by_its_name(app, engine, world):
    rid = world["rennes"]
    before = row(engine, rid)
    departement = signed_in(app, "agent@ille-et-vilaine.fr")
    page = departement.get("/tableau/campagnes/nouvelle")
    reply = departement.post("/tableau/campagnes/nouvelle", data=form(page.text, name="parcours-rennes"))
    assert reply.status_code == 400 and "déjà pris" in reply.text
    assert row(engine, rid).spec == before.spec


def test_the_owner_edits_but_cannot_change_the_owner(app, engine, world):
    rid = world["rennes"]
    metropole = signed_in(app, "agent@rennesmetropole.fr")
    page = metropole.get(f"/tableau/campagnes/nouvelle?depuis={rid}")
    assert page.status_code == 200 and "Modifier la campagne parcours-rennes" in page.text
    saved = metropole.post("/tableau/campagnes/nouvelle", follow_redirects=False,
                           data=form(page.text, owner_name="Quelqu'un d'autre", owner_territory="departements:35"))
    assert saved.status_code == 303 and saved.headers["location"] == f"/tableau/campagnes/{rid}"
    after = row(engine, rid)
    assert after.spec["title"] == "Nouveau titre" and owner(after) == METROPOLE
    assert after.owner == "Rennes Métropole"


def test_an_operator_changes_the_owner_only_after_the_preview_showed_it(app, engine, world):
    rid = world["rennes"]
    operator = signed_in(app, "op@declic.fr")
    page = operator.get(f"/tableau/campagnes/nouvelle?depuis={rid}")
    fields = {"owner_name": "Département d'Ille-et-Vilaine", "owner_territory": "departements:35"}
    first = operator.post("/tableau/campagnes/nouvelle", data=form(page.text, **fields))
    assert first.status_code == 409 and "Le porteur change" in first.text and "Aperçu" in first.text
    assert "Rennes Métropole (epci:243500139)" in first.text
    assert owner(row(engine, rid)) == METROPOLE
    confirmed = operator.post("/tableau/campagnes/nouvelle", follow_redirects=False,
                              data=form(first.text, **fields))
    assert confirmed.status_code == 303
    assert owner(row(engine, rid))["territory"] == {"departements": ["35"]}
    # Without an owner change, the operator saves at once.
    page = operator.get(f"/tableau/campagnes/nouvelle?depuis={rid}")
    again = operator.post("/tableau/campagnes/nouvelle", follow_redirects=False,
                          data=form(page.text, title="Encore", **fields))
    assert again.status_code == 303 and row(engine, rid).spec["title"] == "Encore"


def test_the_preview_of_a_new_campaign_shows_the_campaigns_it_overlaps(app, engine, world):
    # Issue 20: the Département drafts a building-trade creation campaign over Rennes Métropole's own.
    departement = signed_in(app, "agent@ille-et-vilaine.fr")
    page = departement.get("/tableau/campagnes/nouvelle")
    reply = departement.post("/tableau/campagnes/nouvelle", data=form(
        page.text, name="batiment-35", owner_name="Département d'Ille-et-Vilaine", action="apercu"))
    assert reply.status_code == 200, reply.text
    section = reply.text[reply.text.index('id="t-recoupements"'):]
    assert "parcours-rennes" in section and "Rennes Métropole" in section
    assert "accompagne les entreprises communes (Rennes Métropole)" in section  # the most local owner wins
    with engine.connect() as conn:
        assert conn.execute(select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.name == "batiment-35")).first() is None


def test_the_campaign_page_offers_an_edit_to_its_owner_and_a_copy_to_the_others(app, world):
    rid = world["rennes"]
    own = signed_in(app, "agent@rennesmetropole.fr").get(f"/tableau/campagnes/{rid}").text
    assert f'href="/tableau/campagnes/nouvelle?depuis={rid}">Modifier la campagne' in own
    other = signed_in(app, "agent@ille-et-vilaine.fr").get(f"/tableau/campagnes/{rid}").text
    assert f'href="/tableau/campagnes/nouvelle?copie={rid}">Copier la campagne' in other
    assert "Modifier la campagne" not in other
