"""Sample contexts and previews of rendered messages (pure: no store, no network).

``sample_context`` builds a full context that honours the contract in ``templates.render`` for any family,
trigger and number of offers; tests, the linter and ``declic templates preview`` use it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from templates.render import Rendered, TemplateLibrary, library

CHANNELS = ("email", "sms", "letter", "call")
TRIGGERS = ("creation", "first_hire", "takeover", "critical_period", "consolidation", "deadline")
FAMILIES = (
    "batiment", "alimentation", "hotellerie_restauration", "beaute_bien_etre", "commerce_detail", "automobile",
    "transport", "services_particuliers", "services_entreprises", "artisanat_production", "agriculture", "sante",
    "autre", "commerce_gros", "culture_loisirs",
)

# family -> (family label, the owner's métier, a typical business name, the ambassador's métier)
_SAMPLES: dict[str, tuple[str, str, str, str]] = {
    "batiment": ("Bâtiment", "plombier-chauffagiste", "Durand Plomberie", "plombière"),
    "alimentation": ("Alimentation", "boulanger-pâtissier", "Boulangerie du Cèdre", "bouchère"),
    "hotellerie_restauration": ("Hôtellerie-restauration", "restaurateur", "Le Bistrot du Pont", "restauratrice"),
    "beaute_bien_etre": ("Beauté et bien-être", "coiffeuse", "Salon Héloïse", "esthéticienne"),
    "commerce_detail": ("Commerce de détail", "fleuriste", "Fleurs de Saison", "libraire"),
    "commerce_gros": ("Commerce de gros", "grossiste en boissons", "Boissons Vivaroises", "agent commercial"),
    "automobile": ("Automobile", "garagiste", "Garage Roux", "carrossière"),
    "transport": ("Transport et logistique", "chauffeur de taxi", "Taxi Privas", "transporteuse"),
    "services_particuliers": ("Services aux particuliers", "cordonnier", "Cordonnerie Blanc", "couturière"),
    "services_entreprises": ("Services aux entreprises", "agent de nettoyage", "Net Pro Ardèche", "comptable"),
    "artisanat_production": ("Artisanat et fabrication", "ébéniste", "Atelier Chêne et Noyer", "ferronnière"),
    "culture_loisirs": ("Culture, sport et loisirs", "professeur de yoga", "Yoga du Vivarais", "photographe"),
    "agriculture": ("Agriculture, pêche et forêt", "maraîcher", "Les Jardins de Lyas", "éleveuse"),
    "sante": ("Santé et médico-social", "kinésithérapeute", "Cabinet Faure", "infirmière"),
    "autre": ("Autres activités", "gérant", "Vallée Services", "comptable"),
}

_OFFERS: tuple[dict[str, Any], ...] = (
    {"title": "Atelier : vos premiers pas avec un logiciel simple", "provider": "CMA Ardèche", "kind": "atelier",
     "format": "en petit groupe à Privas", "duration": "2 h", "hours": "le lundi de 14 h à 16 h", "price": 0},
    {"title": "Un étudiant vous aide dans votre entreprise", "provider": "1 commerçant - 1 étudiant",
     "kind": "accompagnement", "format": "chez vous", "duration": "3 séances d'une heure",
     "hours": "aux heures qui vous arrangent", "price": 30},
)


def sample_context(family: str = "batiment", trigger: str = "creation", offers: int | list[dict[str, Any]] = 2,
                   **overrides: Any) -> dict[str, Any]:
    """A complete render context for one family and trigger, with 0 to 2 sample offers (or the offers given);
    keys in overrides replace whole entries."""
    label, metier, name, peer = _SAMPLES.get(family, _SAMPLES["autre"])
    context: dict[str, Any] = {
        "business": {"siret": "85312345600017", "name": name, "metier": metier, "family": family,
                     "family_label": label, "commune": "Privas", "postal_code": "07000"},
        "ambassador": {"name": "Sophie Martin", "metier": peer, "phone": "06 12 34 56 78",
                       "email": "sophie.martin@example.fr", "commune": "Aubenas"},
        "offers": (list(offers) if isinstance(offers, list)
                   else [dict(o) for o in _OFFERS[:max(0, min(offers, 2))]]),
        "sender": {"name": "Privas Centre Ardèche", "address": "1 rue de la Mairie, 07000 Privas",
                   "email": "declic@example.fr", "phone": "04 75 00 00 00"},
        "links": {"landing": "https://declic.example.fr/r/7Kq2xW", "short": "https://declic.example.fr/s/7Kq2x",
                  "unsubscribe": "https://declic.example.fr/u/7Kq2xW"},
        "trigger": {"type": trigger, "occurred_on": dt.date(2026, 10, 5)},
        "deadline": ({"label": "envoi des factures électroniques", "date": dt.date(2027, 9, 1)}
                     if trigger == "deadline" else None),
        "campaign": {"name": "Déclic Ardèche 2026"},
    }
    context.update(overrides)
    return context


def render_preview(template_name: str, context: dict[str, Any] | None = None,
                   lib: TemplateLibrary | None = None) -> Rendered:
    """Render one template with a context (the sample context of its trigger when none is given)."""
    lib = lib or library()
    if context is None:
        parts = template_name.split("/")
        trigger = parts[1] if len(parts) > 2 else "creation"
        family = parts[-1].split(".")[0]
        context = sample_context(family if family in _SAMPLES else "autre", trigger)
    return lib.render(template_name, context)


def preview_text(lib: TemplateLibrary, name: str, context: dict[str, Any]) -> str:
    """A rendered message formatted for a terminal: the template name, the subject, then the body."""
    rendered = lib.render(name, context)
    lines = [f"== {name}"]
    if rendered.subject:
        lines.append(f"Objet : {rendered.subject}")
    lines.append("-" * 72)
    lines.append(rendered.body.rstrip("\n"))
    return "\n".join(lines) + "\n"
