"""What every door in produces: normalised trigger events, business facts and explained rejects.

Parsers (partner API/CSV, Sirene, BODACC, the regulatory calendar) turn raw input into these values and
nothing downstream ever sees a raw payload.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Life-cycle triggers that start journeys, and conversion events that close them.
# `collective_procedure` (a BODACC safeguard or receivership judgment) is a legal event in a hard moment, not a
# sales moment: it is never a `critical_period`, and only a campaign that names it in its triggers reaches it
# (none of the shipped samples does). A liquidation judgment is a `closure`.
TRIGGER_TYPES = (
    "creation",
    "first_hire",
    "takeover",
    "critical_period",
    "consolidation",
    "closure",
    "activity_change",
    "deadline",
    "collective_procedure",
)
# Adoption: the business started using a tool for real (a partner saw it, an ambassador heard it). Like a
# conversion it is attributed to the business's latest enrollment and never planned; unlike one it carries a
# `category` (one of ADOPTION_CATEGORIES) and is measured on its own (adoption by arm, adoption uplift).
ADOPTION_TYPES = ("tool_adopted",)
# Events attributed to an enrollment rather than planned into journeys: conversions, then adoption.
CONVERSION_TYPES = ("offer_enrolled", "diagnostic_completed", "ambassador_met", *ADOPTION_TYPES)
EVENT_TYPES = TRIGGER_TYPES + CONVERSION_TYPES
# Stable codes in data, French labels for people.
ADOPTION_CATEGORIES = {
    "quotes_invoices": "devis et factures",
    "einvoicing_platform": "facturation électronique (compte sur une plateforme agréée)",
    "payment": "paiement",
    "booking": "prise de rendez-vous",
    "online_visibility": "visibilité en ligne",
    "management": "gestion",
}


def check_adoption_category(value: object) -> str:
    """The code of an adoption category given by its code or its French label (any case), or ValueError."""
    text = " ".join(str(value or "").split()).lower()
    if text in ADOPTION_CATEGORIES:
        return text
    for code, label in ADOPTION_CATEGORIES.items():
        if text == label.lower():
            return code
    known = ", ".join(ADOPTION_CATEGORIES)
    raise ValueError(f"catégorie d'adoption inconnue : {str(value)[:60]!r} (connues : {known})")


@dataclass(slots=True)
class ContactPoint:
    """A way to reach a business and where we learnt it (partner name, "sirene", "bodacc", "landing")."""

    kind: str  # "email" | "phone" | "postal"
    value: str
    source: str
    consent: bool = False  # explicit consent or an existing relationship (needed for calls)


@dataclass(slots=True)
class BusinessFacts:
    """What a door knows about a business; None means "unknown here", never "erase"."""

    siret: str
    name: str | None = None
    naf_code: str | None = None  # NAF rév. 2, "43.22A"
    naf25_code: str | None = None
    commune_code: str | None = None  # INSEE code; arrondissements are mapped to their commune downstream
    tranche_effectifs: str | None = None
    employer: bool | None = None
    creation_date: dt.date | None = None
    state: str | None = None  # "active" | "closed"
    do_not_contact: bool | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    contacts: list[ContactPoint] = field(default_factory=list)
    state_since: dt.date | None = None  # start of the current Sirene period (dateDebut): closure date
    head_office: bool | None = None  # etablissementSiege: where a SIREN-only event (BODACC) lands
    # INSEE's categorieEntreprise of the legal unit (SIREN): "PME", "ETI" or "GE"; None when unknown. It decides
    # the e-invoicing dates (triggers/calendar.py), not the establishment's head count.
    categorie_entreprise: str | None = None


@dataclass(slots=True)
class EventIn:
    """One normalised trigger or conversion event, ready to store (idempotent on source + external_id)."""

    source: str  # "partner:<name>", "sirene", "bodacc", "calendar"
    external_id: str
    type: str
    occurred_on: dt.date
    siret: str | None = None
    siren: str | None = None
    business: BusinessFacts | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reject:
    """An input row that did not go in, and why, in words a partner can act on."""

    line: int | None
    field: str
    reason: str
    raw: str = ""
