"""Sample contexts and previews of rendered messages (pure: no store, no network).

``sample_context`` builds a full context that honours the contract in ``templates.render`` for any family,
trigger and number of offers; tests, the linter and ``declic templates preview`` use it.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import Any

from orchestrator.core.links import links_for
from segments.taxonomy import naf_entries, trade_wordings
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
                       "email": "sophie.martin@example.fr", "commune": "Aubenas", "role": "pair"},
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


# --- the lint matrix: the real shapes a message takes -------------------------------------------------------------

# A realistic production host: the signed links are measured at the length they really leave with.
MATRIX_BASE_URL = "https://declic.ille-et-vilaine.fr"
_MATRIX_SECRET = "lint-matrix-secret-0123456789abcdef"
_MATRIX_MESSAGE_ID = 12_345_678  # an outbox id of a busy year: tokens grow with it
_MATRIX_SIGNED_AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # any moment: a token's length does not depend on it

# Offers as the registry hands them to a message (OfferView.as_context): codes for kind and format, one grant.
MATRIX_OFFERS: tuple[dict[str, Any], ...] = (
    {"title": "Atelier « mes devis et mes factures sur téléphone »", "provider": "CCI Ille-et-Vilaine",
     "kind": "formation_courte", "format": "a_distance", "duration": "1 h 30", "hours": "mardi 12h30-14h",
     "price": "20 €", "grant": None},
    {"title": "Chèque numérique", "provider": "Région Bretagne", "kind": "financement", "format": "mixte",
     "duration": "15 min pour la demande", "hours": "en ligne", "price": None,
     "grant": "La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 €"},
)
_PEER = {"name": "Marie-Françoise Le Bihan-Kerhervé", "phone": "+33612345678",
         "email": "marie-francoise.lebihan-kerherve@exemple-entreprise.fr", "role": "pair"}
_ADVISER = {"name": "Claire Le Goff", "metier": "conseillère numérique", "phone": "02 99 02 35 36",
            "email": None, "commune": None, "role": "conseiller"}
# A covering array on four two-level factors (trade noun, commune name, ambassador, offers): every pair of levels
# of any two factors appears in some row, and both extremes (all long, all short) are rows. Six renders a family
# instead of sixteen keep the whole lint within seconds.
_ROWS = ((0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0))


@lru_cache(maxsize=1)
def matrix_links() -> dict[str, str]:
    """Links of the real lengths: signed landing and unsubscribe tokens (make_token), the short link."""
    return links_for(_MATRIX_SECRET, MATRIX_BASE_URL, _MATRIX_MESSAGE_ID, now=_MATRIX_SIGNED_AT)


@lru_cache(maxsize=1)
def _trade_extremes() -> dict[str, tuple[tuple[str, str], tuple[str, str]]]:
    """Per family, the (NAF code, métier) of the longest and of the shortest business noun of its sub-classes."""
    by_family: dict[str, list[tuple[int, str, str]]] = {}
    for code, wording in trade_wordings().items():
        entry = naf_entries().get(code)
        if entry is not None:
            by_family.setdefault(entry.family, []).append((len(wording.business), code, entry.metier))
    out = {}
    for family, items in by_family.items():
        items.sort()
        out[family] = ((items[-1][1], items[-1][2]), (items[0][1], items[0][2]))
    return out


@lru_cache(maxsize=1)
def _commune_extremes() -> tuple[tuple[str, str], tuple[str, str]]:
    """(name, postal-code-like département) of the longest and the shortest commune name of the reference."""
    text = resources.files("segments.data").joinpath("communes.csv").read_text(encoding="utf-8")
    rows = [(len(r["nom"]), r["nom"], r["departement"]) for r in csv.DictReader(text.splitlines())
            if r.get("type") == "commune-actuelle"]
    rows.sort()
    return (rows[-1][1], rows[-1][2]), (rows[0][1], rows[0][2])


def matrix_contexts(family: str, trigger: str) -> list[tuple[str, dict[str, Any]]]:
    """The contexts the linter renders a template with for one family: (label, context) for the longest and
    shortest trade nouns of the family, the longest and shortest commune names, a peer or an adviser, two
    offers or none, always with real signed and short link lengths."""
    nouns = _trade_extremes().get(family)
    communes = _commune_extremes()
    out = []
    for noun, place, adviser, no_offers in _ROWS:
        context = sample_context(family, trigger, offers=[] if no_offers else [dict(o) for o in MATRIX_OFFERS])
        business = dict(context["business"])
        if nouns is not None:
            business["naf"], business["metier"] = nouns[noun]
        commune, dep = communes[place]
        business["commune"], business["postal_code"] = commune, f"{dep}{'0' * (5 - len(dep))}"[:5]
        context["business"] = business
        if adviser:
            context["ambassador"] = dict(_ADVISER)
        else:
            # a peer's métier as the registry has it (typed by an operator), the longest place name
            context["ambassador"] = dict(_PEER, metier=context["ambassador"]["metier"], commune=commune)
        context["links"] = dict(matrix_links())
        label = "/".join((("nom long", "nom court")[noun], ("commune longue", "commune courte")[place],
                          ("pair", "conseiller")[adviser], ("2 offres", "sans offre")[no_offers]))
        out.append((f"{family}, {label}" + (f", {business['naf']}" if nouns else ""), context))
    return out


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
