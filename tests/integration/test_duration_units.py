"""The old ambiguous duration unit `m` (issue 17) is still read as before, and said to the campaign's author where
spec problems are said: `declic campaigns apply` and the campaign form's preview; the form writes ages in `mo`."""

from __future__ import annotations

import datetime as dt
import re

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from orchestrator.core.campaign_spec import load_spec
from store.accounts import add_user
from store.admin import apply_campaign
from store.migrate import upgrade
from store.models import Campaign
from store.reference import load_reference
from tests.utils.factories import campaign_spec
from web.app import create_app
from web.campaign_form import form_from_spec

PASSWORD = "un-mot-de-passe-solide"
OLD_UNITS = campaign_spec(
    "ancienne-unite-35",
    steps=[{"channel": "email", "delay": "0d", "template": "creation"},
           {"channel": "email", "delay": "30m", "template": "creation", "if": "no_click"}],
    segment={"families": ["batiment"], "age": {"max": "6m"}})


def test_campaigns_apply_says_which_duration_to_rewrite(env_settings, engine, tmp_path):
    upgrade(env_settings.resolved_database_url)
    load_reference(engine)
    path = tmp_path / "campagne.yaml"
    path.write_text(yaml.safe_dump(OLD_UNITS, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(cli, ["campaigns", "apply", str(path)], terminal_width=240)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "créée" in text
    assert ("À réécrire : étape 2, délai (delay) : « 30m » est ambigu, lu ici comme 30 minutes ; écrivez « 30min » "
            "(minutes) ou « 30mo » (mois).") in text
    assert "segment, âge maximal (age.max) : « 6m » est ambigu, lu ici comme 6 mois" in text
    with engine.connect() as conn:
        stored = conn.execute(select(Campaign.__table__.c.spec)).scalar_one()
    assert stored["steps"][1]["delay"] == "30m"  # applied as written: the old meaning holds


def test_the_form_preview_lists_them_and_writes_ages_in_months(settings, engine):
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    cid = apply_campaign(engine, load_spec(OLD_UNITS), now=dt.datetime.now(dt.UTC))[0]
    client = TestClient(create_app(bootstrap(settings)))
    login = client.get("/connexion").text
    client.post("/connexion", data={"email": "op@declic.fr", "password": PASSWORD,
                                    "csrf": re.search(r'name="csrf" value="([^"]+)"', login)[1]})
    page = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
    assert '<option value="mo" selected>mois</option>' in page.text
    with engine.connect() as conn:
        stored = conn.execute(select(Campaign.__table__.c.spec)).scalar_one()
    form = {**form_from_spec(stored), "csrf": re.search(r'name="csrf" value="([^"]+)"', page.text)[1],
            "depuis": str(cid), "action": "apercu"}
    preview = client.post("/tableau/campagnes/nouvelle", data=form)
    assert preview.status_code == 200, preview.text
    rewrite = re.search(r'<h3 id="a-reecrire">À réécrire</h3>\s*<ul>(.*?)</ul>', preview.text, re.S)[1]
    assert "étape 2, délai (delay) : « 30m » est ambigu, lu ici comme 30 minutes" in rewrite
    assert "âge" not in rewrite  # the form writes the age in the new unit
    saved = client.post("/tableau/campagnes/nouvelle", data={**form, "action": "enregistrer"},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with engine.connect() as conn:
        stored = conn.execute(select(Campaign.__table__.c.spec)).scalar_one()
    assert stored["segment"]["age"]["max"] == "6mo" and stored["steps"][1]["delay"] == "30m"
