"""Seed data for the conversion loop and dashboard tests: two collectivités' campaigns, businesses,
enrollments in both arms, messages and interactions, written straight to the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from orchestrator.core.campaign_spec import load_spec
from segments.territory import commune
from store.admin import apply_campaign
from store.models import Business, Enrollment, Interaction, Message
from tests.utils.factories import campaign_spec, siret

BUSINESS = Business.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__
T0 = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)


def campaign(engine, name: str, departement: str, families=("batiment",)) -> int:
    """A one-step e-mail campaign owned by the département `departement`; its SMS (tests add some) are B2B
    prospecting on the legitimate interest the owner declares (no per-person SMS consent needed)."""
    spec = campaign_spec(
        name,
        families=families,
        owner={"name": f"Département {departement}", "territory": {"departements": [departement]}},
        sms_legal_basis="legitimate_interest",
    )
    return apply_campaign(engine, load_spec(spec), now=T0)[0]


def business(
    conn,
    commune_code: str,
    *,
    name: str = "Plomberie Durand",
    family: str = "batiment",
    email: str | None = "patron@exemple.fr",
) -> int:
    """A business in that commune, with its territory filled in."""
    place = commune(commune_code)
    value = siret()
    return conn.execute(
        BUSINESS.insert().values(
            siret=value,
            siren=value[:9],
            name=name,
            naf_code="43.22A",
            metier_family=family,
            commune_code=commune_code,
            epci_code=place.epci,
            departement_code=place.departement,
            region_code=place.region,
            email=email,
            created_at=T0,
            updated_at=T0,
        )
    ).inserted_primary_key[0]


def context(
    name: str = "Plomberie Durand",
    ambassador_email: str | None = "claire@exemple.fr",
    ambassador_id: int | None = 7,
    offers: list | None = None,
) -> dict:
    """A message context as the planner writes it."""
    amb = {
        "name": "Claire Le Goff",
        "metier": "plombière",
        "phone": "02 99 02 35 36",
        "email": ambassador_email,
        "commune": "Rennes",
    }
    return {
        "business": {
            "siret": "85312345600017",
            "name": name,
            "metier": "plombier",
            "family": "batiment",
            "family_label": "Bâtiment",
            "commune": "Rennes",
            "postal_code": "35000",
        },
        "ambassador": amb,
        "offers": offers
        if offers is not None
        else [
            {
                "title": "Atelier : vos devis et factures sur ordinateur",
                "provider": "CMA",
                "kind": "atelier",
                "format": "à Rennes",
                "duration": "2 h",
                "hours": "lundi 14 h",
                "price": 0,
            },
            {
                "title": "Être trouvé sur internet : votre fiche sur la carte",
                "provider": "CCI",
                "kind": "atelier",
                "format": "en ligne",
                "duration": "1 h",
                "hours": "jeudi 12 h",
                "price": 20,
            },
        ],
        "sender": {
            "name": "Département",
            "address": "1 avenue de la Préfecture, 35042 Rennes",
            "email": "declic@exemple.fr",
        },
        "trigger": {"type": "creation", "occurred_on": "2026-10-01"},
        "deadline": None,
        "campaign": {"name": "Bienvenue"},
        "meta": {"ambassador_id": ambassador_id, "ambassador_gap": ambassador_id is None, "offer_ids": []},
    }


def enrol(
    conn,
    campaign_id: int,
    business_id: int,
    *,
    arm: str = "treatment",
    variant: str | None = None,
    trigger: str = "creation",
    at: dt.datetime = T0,
    status: str = "sent",
    channel: str = "email",
    ctx: dict | None = None,
) -> tuple[int, int | None]:
    """An enrollment and, in the treatment arm, its one message; returns (enrollment id, message id)."""
    enrollment_id = conn.execute(
        ENROLLMENTS.insert().values(
            campaign_id=campaign_id,
            business_id=business_id,
            trigger_key=trigger,
            trigger_type=trigger,
            arm=arm,
            variant=variant,
            campaign_version=1,
            enrolled_at=at,
        )
    ).inserted_primary_key[0]
    if arm == "holdout":
        return enrollment_id, None
    message_id = conn.execute(
        MESSAGES.insert().values(
            campaign_id=campaign_id,
            enrollment_id=enrollment_id,
            business_id=business_id,
            step=0,
            channel=channel,
            template=trigger,
            variant=variant,
            recipient="patron@exemple.fr",
            due_at=at,
            status=status,
            attempts=1 if status != "planned" else 0,
            sent_at=at if status in ("sent", "delivered") else None,
            context=ctx or context(),
            created_at=at,
        )
    ).inserted_primary_key[0]
    return enrollment_id, message_id


def interact(
    conn,
    campaign_id: int,
    business_id: int,
    enrollment_id: int,
    message_id: int | None,
    kind: str,
    at: dt.datetime,
) -> None:
    """One interaction row."""
    conn.execute(
        INTERACTIONS.insert().values(
            business_id=business_id,
            message_id=message_id,
            campaign_id=campaign_id,
            enrollment_id=enrollment_id,
            kind=kind,
            at=at,
            data={},
        )
    )


@dataclass
class Tenant:
    """What was seeded for one collectivité."""

    campaign_id: int
    business_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)


def seed_funnel(
    engine,
    name: str = "bienvenue-35",
    departement: str = "35",
    commune_code: str = "35238",
    treatment: int = 10,
    holdout: int = 5,
    clicks: int = 6,
    responses: int = 3,
    conversions_t: int = 2,
    conversions_h: int = 1,
) -> Tenant:
    """A campaign with a known funnel: `treatment` sent, `holdout` held back, the first businesses of
    each arm clicking, responding and converting (conversions 3 days after the enrollment)."""
    tenant = Tenant(campaign(engine, name, departement))
    with engine.begin() as conn:
        for i in range(treatment):
            b = business(conn, commune_code, name=f"Entreprise T{i}")
            e, m = enrol(conn, tenant.campaign_id, b, variant="A" if i % 2 == 0 else "B")
            tenant.business_ids.append(b)
            tenant.message_ids.append(m)
            if i < clicks:
                interact(conn, tenant.campaign_id, b, e, m, "click", T0 + dt.timedelta(hours=2))
            if i < responses:
                interact(conn, tenant.campaign_id, b, e, m, "callback_request", T0 + dt.timedelta(hours=3))
            if i < conversions_t:
                interact(conn, tenant.campaign_id, b, e, None, "offer_enrolled", T0 + dt.timedelta(days=3))
        for i in range(holdout):
            b = business(conn, commune_code, name=f"Entreprise H{i}")
            e, _ = enrol(conn, tenant.campaign_id, b, arm="holdout")
            tenant.business_ids.append(b)
            if i < conversions_h:
                interact(conn, tenant.campaign_id, b, e, None, "offer_enrolled", T0 + dt.timedelta(days=3))
    return tenant


def use_octopush_peer(settings, peer) -> None:
    """Point the test's settings at an Octopush-like provider on loopback (`integrations.loopback`)."""
    settings.sms_provider, settings.sms_url = "octopush", peer.url + "/v1/public/sms-campaign/send"
    settings.sms_api_key, settings.sms_login, settings.sms_sender = "k3y", "ops@declic.test", "DECLIC"
    settings.sms_timeout = 2
