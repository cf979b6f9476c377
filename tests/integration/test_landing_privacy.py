"""The landing page says where the data came from and carries the privacy notice of the campaign (GDPR art. 14,
issue 13 point 3), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.links import make_token
from store.admin import apply_campaign
from tests.utils.factories import campaign_spec
from tests.utils.outreach import business, context, enrol
from web.app import create_app


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def _page(client, settings, engine, origin: dict, **spec) -> str:
    campaign_id = apply_campaign(engine, load_spec(campaign_spec("donnees-35", **spec)), now=dt.datetime.now(dt.UTC))[0]
    with engine.begin() as conn:
        b = business(conn, "35238")
        _, m = enrol(conn, campaign_id, b, ctx=dict(context(), origin=origin))
    reply = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    assert reply.status_code == 200
    return reply.text


def test_the_landing_page_names_the_source_and_shows_the_privacy_notice(client, settings, engine):
    html = _page(client, settings, engine, {"event": "sirene", "email": "BGE 35", "address": "sirene"},
                 privacy_contact="donnees@ille-et-vilaine.fr")
    assert "Vos données" in html and "qui viennent d&#39;être créées" in html
    assert "répertoire Sirene de l&#39;INSEE et BGE 35" in html
    assert "Responsable :</strong> Département d&#39;Ille-et-Vilaine" in html
    assert "Base légale" in html and "intérêt public" in html
    assert "3 ans" in html  # DECLIC_RETENTION_CONTACT_DAYS
    assert "mailto:donnees@ille-et-vilaine.fr" in html and "/u/" in html
    assert "<script" not in html and "style=" not in html


def test_without_a_privacy_contact_the_sender_is_written_to(client, settings, engine):
    html = _page(client, settings, engine, {"event": "bodacc"})
    assert "le BODACC" in html and "Sirene" not in html.split("Vos données")[1].split("Responsable")[0]
    assert "1 avenue de la Préfecture, 35042 Rennes" in html
