"""Factories for tests: valid SIRETs, partner events, campaign specs."""

from __future__ import annotations

import datetime as dt
import random

from orchestrator.core.synthetic import make_siret

_rng = random.Random(2026)


def siret() -> str:
    """A fresh valid SIRET."""
    return make_siret(_rng)


def creation_item(external_id: str, *, siret_value: str | None = None, email: str | None = "patron@exemple.fr",
                  naf: str = "43.22A", commune: str = "35238", occurred_on: dt.date | None = None) -> dict:
    """A partner API item announcing a creation in Rennes (plumbing by default)."""
    occurred_on = occurred_on or dt.date.today() - dt.timedelta(days=3)
    item = {
        "external_id": external_id, "type": "creation", "siret": siret_value or siret(),
        "occurred_on": occurred_on.isoformat(),
        "business": {"name": "Plomberie Durand", "naf_code": naf, "commune_code": commune},
    }
    if email:
        item["contact"] = {"email": email}
    return item


def campaign_spec(name: str = "bienvenue-35", families=("batiment",), **overrides) -> dict:
    """A one-step e-mail campaign of the Ille-et-Vilaine département."""
    spec = {
        "name": name,
        "owner": {"name": "Département d'Ille-et-Vilaine", "territory": {"departements": ["35"]}},
        "sender": {"name": "Département d'Ille-et-Vilaine", "address": "1 avenue de la Préfecture, 35042 Rennes"},
        "contact": {"name": "Claire Le Goff", "metier": "conseillère", "phone": "02 99 02 35 36"},
        "triggers": ["creation"],
        "segment": {"families": list(families)},
        "steps": [{"channel": "email", "delay": "0d", "template": "creation"}],
    }
    spec.update(overrides)
    return spec
