"""A business built through the real doors for the personal-data tests: a Sirene row, a partner event with
contacts and a free payload, a campaign's e-mail sent, and a callback request on its landing page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import App, bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.ingest import ingest_sirene
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.links import make_token
from store.admin import add_partner, apply_campaign
from store.models import Message
from tests.unit.test_sirene import SIRET_A, row, write
from tests.utils.factories import campaign_spec
from web.app import create_app
from web.csrf import make_csrf

# A Tuesday evening inside the building trades' window, far from holidays.
NOW = dt.datetime(2026, 12, 1, 16, 45, tzinfo=dt.UTC)
EMAIL = "jean.durand@plomberie-durand.fr"
PHONE = "06 12 34 56 78"
CALLBACK_PHONE = "06 98 76 54 32"
NOTE = "Rappelez-moi après 18 h, je suis sur un chantier à Cesson."


@dataclass
class Built:
    app: App
    siret: str
    token: str
    message_id: int


def partner_item(external_id: str, siret: str, email: str = EMAIL, phone: str = PHONE) -> dict:
    return {"external_id": external_id, "type": "creation", "siret": siret,
            "occurred_on": (NOW.date() - dt.timedelta(days=3)).isoformat(),
            "business": {"name": "Plomberie Jean Durand", "naf_code": "43.22A", "commune_code": "35238"},
            "contact": {"email": email, "phone": phone},
            "payload": {"note": "Mme Le Goff le suit, a un apprenti", "dossier": "BGE-2026-117"}}


def post_events(client: TestClient, token: str, items: list[dict]) -> dict:
    reply = client.post("/api/v1/events", json={"events": items}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def build_business(settings, engine, tmp_path) -> Built:
    """Sirene row + partner event + sent e-mail + callback request, through the real doors."""
    app = bootstrap(settings, clock=lambda: NOW)
    recent = (NOW.date() - dt.timedelta(days=20)).isoformat()
    ingest_sirene(engine, write(tmp_path / "stock.csv", [row(dateCreationEtablissement=recent)]), today=NOW.date(),
                  now=NOW)
    apply_campaign(engine, load_spec(campaign_spec("bienvenue-35")), now=NOW)
    token = add_partner(engine, "bge-35", ["creation"], ["departement:35"], now=NOW)
    with TestClient(create_app(bootstrap(settings))) as client:
        post_events(client, token, [partner_item("bge-1", SIRET_A)])
        plan_all(app)
        assert dispatch_all(app)["sent"] >= 1
        with engine.connect() as conn:
            message_id = conn.execute(select(Message.__table__.c.id).where(
                Message.__table__.c.channel == "email", Message.__table__.c.status == "sent")).scalars().first()
        landing = make_token(settings.resolved_secret, "m", message_id, now=dt.datetime.now(dt.UTC))
        reply = client.post(f"/m/{landing}/rappel", data={
            "csrf": make_csrf(settings.resolved_secret, f"landing:{message_id}"),
            "phone": CALLBACK_PHONE, "slot": "soir", "note": NOTE})
        assert reply.status_code == 200, reply.text
    return Built(app, SIRET_A, token, message_id)
