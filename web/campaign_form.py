"""Campaigns without a file: a form that writes the same spec as the YAML of `declic campaigns apply`,
validated by the same `load_spec` (spec and template checks) and saved with its audit entry by
`orchestrator.app.campaigns`, with a preview of its reach and each message rendered for a real business of the
segment. It covers what the YAML covers: triggers and/or a schedule (a
plain-French recurrence picker, `orchestrator.core.recurrence_fr`), the segment (trades by name, territory by name
with completion, head-count, age, life-cycle stage), steps (channel, delay in days, "si pas de clic", fallback
channels; added and removed by submit buttons, no JavaScript), the message from the library, caps, holdout,
variants. An edit shows what changes (field, avant, après) and the reach before and after. Errors are said
field by field, in French.

A collectivité's campaign always covers its own territory (the owner territory is its scope, not a form
field). Who may change what:
- a new campaign (or a copy) takes a name no campaign has: an existing one is never reached by its name;
- a campaign is edited (`?depuis=ID`) only by its owner (the collectivité whose territory is the campaign's
  owner territory) or an operator; a collectivité that sees a smaller one's campaign gets a copy form
  instead, which saves a new campaign under its own name and territory and leaves the original alone;
- the owner and its territory never change on edit, except by an operator, and then only after the
  preview has shown the change (the save carries the fingerprint of the owner the preview showed).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from orchestrator.app import campaigns
from orchestrator.app.bootstrap import App
from orchestrator.app.message_preview import leaving_message
from orchestrator.core import recurrence_fr
from orchestrator.core.campaign_spec import (
    CHANNELS,
    FALLBACK_CHAIN,
    RENDERED_CHANNELS,
    CampaignSpec,
    load_spec,
    spec_warnings,
)
from orchestrator.core.durations import duration_words
from orchestrator.core.recurrence_fr import RANKS, WEEKDAYS
from orchestrator.core.schedule import next_occurrences
from segments.language import TerritoryFilter, parse_age
from segments.taxonomy import families, legal_form_label
from segments.territory import TerritoryError, _current_communes, communes_of, departements, epcis, parse_place, regions
from store import accounts
from store.planning import business_view, campaign_overlaps, segment_counts, segment_sample, segment_total
from store.report import CHANNEL_LABELS, TRIGGER_LABELS, campaign_by_name, label_for
from triggers.model import TRIGGER_TYPES
from web.auth import ScopeDep, require_csrf
from web.dashboard import render
from web.deps import AppDep, EngineDep
from web.exports import fr_datetime


def _codes(text: str) -> list[str]:
    return [c.strip() for c in (text or "").replace(";", ",").split(",") if c.strip()]


router = APIRouter(prefix="/tableau/campagnes", include_in_schema=False)
MAX_STEPS = 8  # a journey longer than this is a mistake, not a plan
MAX_CAPS = 2
TEMPLATE_ROOT = Path(__file__).resolve().parent.parent / "templates" / "messages"
EDITOR = "2"  # the editor's marker: a post without it (an older page) changes only the fields it always had

CHANNEL_NAMES = {**CHANNEL_LABELS, "webhook": "Partenaire (envoi par son outil)",
                 "relay": "Par son intermédiaire (comptable, CMA, CCI, banque)"}
CONDITION_LABELS = {"": "Toujours", "no_click": "Si pas de clic sur le message précédent",
                    "clicked": "Si clic sur le message précédent",
                    "no_conversion": "Si l'entreprise n'est pas encore accompagnée"}
FALLBACK_MODES = {"defaut": "Les moyens suivants, dans l'ordre (e-mail, SMS, courrier, appel)",
                  "aucun": "Aucun : seulement ce moyen", "choisis": "Seulement ceux cochés ci-dessous"}
HEADCOUNT_LABELS = {"0": "Sans salarié", "1-2": "1 à 2 salariés", "3-5": "3 à 5 salariés", "6-9": "6 à 9 salariés",
                    "10-19": "10 à 19 salariés", "20-49": "20 à 49 salariés", "50+": "50 salariés ou plus",
                    "unknown": "Effectif inconnu"}
STAGE_LABELS = {"creation": "Vient de se créer", "first_hires": "Premières embauches",
                "consolidation": "Se consolide", "critical_period": "Période difficile",
                "collective_procedure": "Procédure collective (sauvegarde, redressement)",
                "transfer": "Reprise ou transmission", "closed": "Fermée"}
AGE_UNITS = {"mo": "mois", "y": "ans", "d": "jours"}
# The legal forms the editor offers (INSEE catégorie juridique, level I or II): those of most TPE, in plain words.
# A stored campaign's other codes (a full four-digit code, written in its YAML) are shown and kept beside them.
LEGAL_FORM_LABELS = {"1": "Entreprise individuelle (micro-entreprise comprise)", "54": "SARL ou EURL",
                     "57": "SAS ou SASU", "65": "Société civile", "92": "Association",
                     "unknown": "Forme juridique inconnue"}
# Message sets of the library that are not a trigger's, with the name a person reads.
SET_LABELS = {"apres_pause": "Après une pause (un message doux, à la fin de la pause demandée)"}
VARIANT_LABELS = {"court": "Version courte", "temoignage": "Version avec le témoignage d'un pair"}
RANK_LABELS = {str(k): v for k, v in RANKS.items()}
WEEKDAY_LABELS = {str(i): d for i, d in enumerate(WEEKDAYS)}

# Where each spec field is written in the form: (the input's id, its name in the form's words).
_FIELDS = {
    "name": ("name", "Nom court"), "title": ("title", "Titre"),
    "owner": ("owner_name", "Porteur"), "sender": ("sender_name", "Expéditeur"),
    "contact": ("contact_name", "Contact"), "triggers": ("f-quand", "Déclencheurs"),
    "schedule": ("schedule_start", "Calendrier"), "starts_on": ("starts_on", "Début"),
    "ends_on": ("ends_on", "Fin"), "holdout": ("holdout", "Groupe témoin"),
    "variants": ("f-variantes", "Variantes"), "pressure": ("cap0_messages", "Plafonds de messages"),
    "timing": ("f-moments", "Moments d'envoi"), "segment": ("f-qui", "À qui"),
}
_SUB_FIELDS = {
    ("owner", "name"): ("owner_name", "Porteur"), ("owner", "territory"): ("owner_territory", "Territoire du porteur"),
    ("sender", "name"): ("sender_name", "Expéditeur"),
    ("sender", "address"): ("sender_address", "Adresse postale de l'expéditeur"),
    ("sender", "email"): ("sender_email", "E-mail de l'expéditeur"),
    ("contact", "name"): ("contact_name", "Contact"), ("contact", "phone"): ("contact_phone", "Téléphone du contact"),
    ("contact", "email"): ("contact_email", "E-mail du contact"),
    ("segment", "families"): ("f-metiers", "Métiers"), ("segment", "territory"): ("segment_territory", "Territoire"),
    ("segment", "headcount"): ("f-effectif", "Effectif"), ("segment", "age"): ("age_min", "Âge de l'entreprise"),
    ("segment", "stages"): ("f-etape-vie", "Étape de vie"),
    ("segment", "legal_forms"): ("f-forme-juridique", "Forme juridique"),
    ("schedule", "start"): ("schedule_start", "Première date"), ("schedule", "rrule"): ("rec_every", "Récurrence"),
    ("schedule", "min_interval"): ("min_interval", "Délai avant de réécrire à une entreprise"),
    ("pressure", "max_defer"): ("max_defer", "Attente maximale d'un message"),
}
_STEP_FIELDS = {"channel": "canal", "delay": "délai", "template": "message", "if": "condition",
                "condition": "condition", "fallback": "moyens de repli"}
_PYDANTIC_FR = {
    "missing": "à remplir", "string_pattern_mismatch": "format non valable",
    "string_type": "texte attendu", "int_parsing": "un nombre entier est attendu",
    "float_parsing": "un nombre est attendu", "date_parsing": "date illisible",
    "date_from_datetime_parsing": "date illisible", "datetime_parsing": "date et heure illisibles",
    "datetime_from_date_parsing": "date et heure illisibles", "extra_forbidden": "champ inconnu",
    "bool_parsing": "oui ou non attendu", "list_type": "liste attendue",
}


class FormError(ValueError):
    """Mistakes found while reading the form itself, each with the input it concerns."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


def _error(field: str | None, label: str, message: str) -> dict[str, str]:
    return {"field": field or "", "label": label, "message": message}


# --- territory by name -------------------------------------------------------------------------------------------

_LEVEL_KEYS = {"commune": "communes", "epci": "epci", "departement": "departements", "region": "regions"}
_LEVEL_WORDS = {"commune": "commune", "epci": "intercommunalité", "departement": "département", "region": "région"}


def _fold(text: str) -> str:
    """A name as typed, compared without case, accents, hyphens or apostrophe kinds."""
    plain = unicodedata.normalize("NFKD", text.replace("’", "'")).encode("ascii", "ignore").decode().casefold()
    return " ".join(plain.replace("-", " ").split())


@lru_cache(maxsize=1)
def _places() -> list[tuple[str, str, str, str]]:
    """Every territory as (level, code, name, département) from the reference data."""
    out = [("region", r.code, r.nom, "") for r in regions().values()]
    out += [("departement", d.code, d.nom, d.code) for d in departements().values()]
    out += [("epci", e.code, e.nom, "") for e in epcis().values()]
    out += [("commune", c.code, c.nom, c.departement) for c in _current_communes().values()]
    return out


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[tuple[str, str]]]:
    index: dict[str, list[tuple[str, str]]] = {}
    for level, code, name, _dep in _places():
        index.setdefault(_fold(name), []).append((level, code))
    return index


@lru_cache(maxsize=1)
def _labels() -> dict[tuple[str, str], str]:
    """The unambiguous label of each territory: its name, with its level or département when the name is shared."""
    out = {}
    for level, code, name, dep in _places():
        if len(_by_name()[_fold(name)]) == 1:
            out[(level, code)] = name
        elif level == "commune":
            out[(level, code)] = f"{name} ({dep})"
        else:
            out[(level, code)] = f"{name} ({_LEVEL_WORDS[level]})"
    return out


@lru_cache(maxsize=1)
def _by_label() -> dict[str, tuple[str, str]]:
    return {_fold(label): key for key, label in _labels().items()}


def territory_label(level: str, code: str) -> str:
    """The name a person reads and types for a territory ("Rennes Métropole", "Bruz", "Paris (département)")."""
    return _labels().get((level, code), code)


def territory_names(territory: dict[str, list[str]] | Any) -> str:
    """A territory (levels -> codes) as the names the form shows, separated by « ; »."""
    data = territory.model_dump() if hasattr(territory, "model_dump") else dict(territory or {})
    return " ; ".join(territory_label(level, code) for level, key in _LEVEL_KEYS.items()
                      for code in data.get(key) or [])


def _one_place(part: str, within: frozenset[str] | None) -> tuple[str, str]:
    """One territory typed by name or code: (level, code), or ValueError in French. The shared parser of
    `segments.territory` (the syntax of every command and spec) reads it; the labels this form's completion
    offers for names several places share ("Saint-Aubin (35)") and, for a collectivité, the one place of that
    name inside its territory, settle what it finds ambiguous."""
    try:
        place = parse_place(part)
        return place.level, place.code
    except TerritoryError as exc:
        found = _by_label().get(_fold(part))
        if found:
            return found
        matches = _by_name().get(_fold(part), [])
        if len(matches) > 1 and within is not None:
            inside = [m for m in matches if communes_of(*m) & within]
            if len(inside) == 1:
                return inside[0]
        raise ValueError(str(exc)) from exc


def territory_from_text(text: str, within: frozenset[str] | None = None) -> dict[str, list[str]]:
    """Territories typed by name ("Rennes Métropole ; Bruz"), by code or as "departement:35", as the spec's
    levels -> codes. The one place the form reads a territory (`within`: the user's communes, to pick between
    places of the same name)."""
    out: dict[str, list[str]] = {}
    problems = []
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", text or ""))):
        pieces = [part] if ":" not in part else [p.strip() for p in part.split(",") if p.strip()]
        for piece in pieces:
            try:
                level, code = _one_place(piece, within)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            codes = out.setdefault(_LEVEL_KEYS[level], [])
            if code not in codes:
                codes.append(code)
    if problems:
        raise ValueError(" ; ".join(problems))
    return out


def territory_choices(scope: accounts.Scope) -> list[str]:
    """The names the territory field completes (a <datalist>): inside a collectivité's territory, its communes,
    intercommunalités and départements; for an operator, every région, département and intercommunalité."""
    if scope.role != "collectivite":
        return sorted(territory_label(level, code) for level, code, _n, _d in _places() if level != "commune")
    mine = _scope_communes(scope)
    out = []
    for level, code, _name, _dep in _places():
        members = communes_of(level, code)
        if members and members <= mine:
            out.append(territory_label(level, code))
    return sorted(out, key=_fold)


def _scope_communes(scope: accounts.Scope) -> frozenset[str]:
    return frozenset(TerritoryFilter.model_validate(scope.territory).communes_covered())


# --- the message library -----------------------------------------------------------------------------------------


def library_sets(channel: str) -> dict[str, str]:
    """The message sets of the library for a channel (`<channel>/<set>/default.j2`), with their French names."""
    folder = TEMPLATE_ROOT / channel
    names = sorted(p.parent.name for p in folder.glob("*/default.j2")) if folder.is_dir() else []
    if channel not in RENDERED_CHANNELS:  # a partner's webhook gets the data, the set only names the moment
        names = sorted(p.parent.name for p in (TEMPLATE_ROOT / "email").glob("*/default.j2"))
    return {n: set_label(n) for n in names}


def set_label(name: str) -> str:
    """A message set's French name: its trigger's, or the library's own."""
    return TRIGGER_LABELS.get(name) or SET_LABELS.get(name) or name.replace("_", " ").capitalize()


@lru_cache(maxsize=1)
def library_variants() -> dict[str, str]:
    """The A/B variants written in the library (`*.<variant>.j2`), with their French names."""
    names = sorted({p.name.split(".")[-2] for p in TEMPLATE_ROOT.glob("*/*/*.*.j2")})
    return {n: VARIANT_LABELS.get(n, n.replace("_", " ").capitalize()) for n in names}


# --- form <-> spec -----------------------------------------------------------------------------------------------


def _days(value: Any) -> str:
    """A step delay as the form shows it: whole days as a number ("2d" -> "2"), anything else as written."""
    text = str(value if value is not None else "0").strip()
    match = re.fullmatch(r"(\d+)\s*[dj]?", text)
    return str(int(match[1])) if match else text


def _as_delay(text: str, default: str = "0") -> str:
    """What the form's delay field holds, as the spec's delay: a number of days "2" -> "2d"."""
    text = (text or "").strip() or default
    return f"{int(text)}d" if text.isdigit() else text


def _int_field(form: dict[str, Any], key: str, label: str, errors: list, lo: int, hi: int) -> int | None:
    text = str(form.get(key) or "").strip()
    if not text:
        return None
    if not text.isdigit() or not lo <= int(text) <= hi:
        errors.append(_error(key, label, f"un nombre entier de {lo} à {hi} est attendu"))
        return None
    return int(text)


def step_count(form: dict[str, Any]) -> int:
    """How many steps the form holds (its counter, or the highest step posted)."""
    posted = [int(m[1]) + 1 for k in form if (m := re.fullmatch(r"step(\d+)_template", k))]
    counted = int(form["steps_count"]) if str(form.get("steps_count") or "").isdigit() else 0
    return max(1, min(MAX_STEPS, max([counted, *posted])))


def _steps(form: dict[str, Any], errors: list) -> list[dict[str, Any]]:
    editor = form.get("editeur") == EDITOR
    steps = []
    for i in range(step_count(form)):
        template = (form.get(f"step{i}_template") or "").strip()
        if not template:
            continue
        step: dict[str, Any] = {"channel": form.get(f"step{i}_channel") or "email",
                                "delay": _as_delay(form.get(f"step{i}_delay") or ""), "template": template}
        if editor:
            if i and form.get(f"step{i}_if"):
                step["if"] = form[f"step{i}_if"]
            mode = form.get(f"step{i}_fallback_mode") or "defaut"
            if mode == "aucun":
                step["fallback"] = []
            elif mode == "choisis":
                step["fallback"] = [c for c in form.get(f"step{i}_fallback") or [] if c != step["channel"]]
        steps.append(step)
    return steps


def _schedule(form: dict[str, Any], errors: list) -> dict[str, Any] | None:
    day = (form.get("schedule_start") or "").strip()
    if not day:
        if form.get("rec_every") not in (None, "", "garder"):
            errors.append(_error("schedule_start", "Première date", "une récurrence demande sa première date"))
        return None
    at = (form.get("schedule_time") or "09:00").strip()
    schedule: dict[str, Any] = {"start": f"{day}T{at}:00" if len(at) == 5 else f"{day}T{at}"}
    try:
        if form.get("rec_every") == "garder":
            rule = form.get("rec_rule") or None
        else:
            choice = recurrence_fr.from_form(form.get("rec_every") or "", form.get("rec_day_kind") or "debut",
                                             form.get("rec_rank") or "", form.get("rec_weekday") or "",
                                             form.get("rec_monthday") or "")
            rule = recurrence_fr.to_rule(choice) if choice else None
    except ValueError as exc:
        errors.append(_error("rec_every", "Récurrence", str(exc)))
        rule = None
    if rule:
        schedule["rrule"] = rule
    interval = _int_field(form, "min_interval", "Délai avant de réécrire à une entreprise", errors, 1, 730)
    if interval is not None:
        schedule["min_interval"] = f"{interval}d"
    return schedule


def _segment(form: dict[str, Any], scope: accounts.Scope, errors: list) -> dict[str, Any]:
    segment: dict[str, Any] = {"families": list(form.get("families") or [])}
    territory: dict[str, list[str]] = {}
    try:
        territory = territory_from_text(
            form.get("segment_territory") or "", _scope_communes(scope) if scope.role == "collectivite" else None)
    except ValueError as exc:
        errors.append(_error("segment_territory", "Territoire", str(exc)))
    for key, level in (("segment_communes", "communes"), ("segment_epci", "epci")):  # the older page's fields
        for code in _codes(form.get(key, "")):
            territory.setdefault(level, []).append(code)
    if territory:
        segment["territory"] = territory
    if form.get("editeur") == EDITOR:
        segment["headcount"] = list(form.get("headcount") or [])
        segment["stages"] = list(form.get("stages") or [])
        segment["legal_forms"] = list(form.get("legal_forms") or [])
        age = {}
        for bound, label in (("min", "Âge minimal"), ("max", "Âge maximal")):
            n = _int_field(form, f"age_{bound}", label, errors, 0, 1200)
            if n is not None:
                unit = form.get(f"age_{bound}_unit") if form.get(f"age_{bound}_unit") in AGE_UNITS else "mo"
                age[bound] = f"{n}{unit}"
        segment["age"] = age or None
    return segment


def spec_from_form(form: dict[str, Any], scope: accounts.Scope) -> dict[str, Any]:
    """The campaign document (the YAML's shape) from the form's fields; FormError names each unreadable field."""
    errors: list[dict[str, str]] = []
    owner_territory: dict[str, list[str]] = {}
    if scope.role == "collectivite":
        owner_territory = scope.territory
    else:
        try:
            owner_territory = territory_from_text(form.get("owner_territory", ""))
        except ValueError as exc:
            errors.append(_error("owner_territory", "Territoire du porteur", str(exc)))
    holdout_text = str(form.get("holdout") or "0").strip().replace(",", ".")
    try:
        holdout = float(holdout_text)
    except ValueError:
        errors.append(_error("holdout", "Groupe témoin", "un pourcentage de 0 à 50 est attendu"))
        holdout = 0.0
    spec: dict[str, Any] = {
        "name": (form.get("name") or "").strip(),
        "title": (form.get("title") or "").strip() or None,
        "owner": {"name": (form.get("owner_name") or "").strip(), "territory": owner_territory},
        "sender": {
            "name": (form.get("sender_name") or "").strip(),
            "address": (form.get("sender_address") or "").strip(),
            "email": (form.get("sender_email") or "").strip() or None,
        },
        "contact": {
            "name": (form.get("contact_name") or "").strip(),
            "metier": (form.get("contact_metier") or "").strip() or None,
            "phone": (form.get("contact_phone") or "").strip() or None,
            "email": (form.get("contact_email") or "").strip() or None,
        },
        "triggers": list(form.get("triggers") or []),
        "segment": _segment(form, scope, errors),
        "steps": _steps(form, errors),
        "holdout": holdout,
    }
    for key in ("starts_on", "ends_on"):
        if form.get(key):
            spec[key] = form[key]
    if form.get("editeur") == EDITOR:
        schedule = _schedule(form, errors)
        if schedule:
            spec["schedule"] = schedule
        caps = []
        for i in range(MAX_CAPS):
            messages = _int_field(form, f"cap{i}_messages", "Plafond : nombre de messages", errors, 1, 50)
            days = _int_field(form, f"cap{i}_days", "Plafond : nombre de jours", errors, 1, 365)
            if messages is not None and days is not None:
                caps.append({"messages": messages, "days": days})
            elif messages is not None or days is not None:
                errors.append(_error(f"cap{i}_messages", "Plafond de messages",
                                     "indiquez le nombre de messages et le nombre de jours"))
        defer = _int_field(form, "max_defer", "Attente maximale d'un message", errors, 0, 365)
        spec["pressure"] = {"caps": caps, "max_defer": f"{defer if defer is not None else 14}d"}
        spec["timing"] = {"weekends": form.get("weekends") == "oui", "holidays": form.get("holidays") == "oui"}
        variants = []
        for name in form.get("variants") or []:
            weight = _int_field(form, f"weight_{name}", f"Part de la variante « {name} »", errors, 1, 100)
            variants.append({"name": name, "weight": weight or 1})
        spec["variants"] = variants
    if errors:
        raise FormError(errors)
    return spec


def _loc_field(loc: tuple) -> tuple[str, str]:
    """The form input and its French name for a pydantic error location."""
    if not loc:
        return "", "Campagne"
    if loc[0] == "steps" and len(loc) > 1 and isinstance(loc[1], int):
        n = loc[1]
        what = _STEP_FIELDS.get(str(loc[2]) if len(loc) > 2 else "", "")
        field = {"canal": "channel", "délai": "delay", "message": "template", "condition": "if",
                 "moyens de repli": "fallback_mode"}.get(what, "channel")
        return f"step{n}_{field}", f"Étape {n + 1}" + (f" : {what}" if what else "")
    if loc[0] == "pressure" and len(loc) > 2 and loc[1] == "caps":
        return f"cap{loc[2]}_messages", "Plafond de messages"
    if len(loc) > 1 and (loc[0], loc[1]) in _SUB_FIELDS:
        return _SUB_FIELDS[(loc[0], loc[1])]
    if loc[0] == "steps":
        return "step0_template", "Messages"
    return _FIELDS.get(str(loc[0]), ("", "Campagne"))


def _message_fr(err: dict[str, Any]) -> str:
    kind, ctx, loc = err.get("type", ""), err.get("ctx") or {}, err.get("loc") or ()
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return "lettres minuscules sans accent, chiffres et tirets seulement (ex. batiment-rennes)"
    if kind == "string_too_short":
        return f"au moins {ctx.get('min_length')} caractères"
    if kind == "string_too_long":
        return f"au plus {ctx.get('max_length')} caractères"
    if kind == "too_short":
        return "ajoutez au moins un message" if loc == ("steps",) else "au moins un élément"
    if kind == "too_long":
        return f"au plus {ctx.get('max_length')} éléments"
    if kind in ("greater_than_equal", "greater_than"):
        return f"au moins {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"au plus {ctx.get('le', ctx.get('lt'))}"
    return _PYDANTIC_FR.get(kind, "valeur non valable")


def validation_errors(exc: Exception) -> list[dict[str, str]]:
    """The spec's errors field by field, in French: which input (its id, to link to it), its name, what is wrong."""
    if isinstance(exc, FormError):
        return exc.errors
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors():
            field, label = _loc_field(tuple(err["loc"]))
            out.append(_error(field, label, _message_fr(err)))
        return out
    text = str(exc)
    if text.startswith("modèles manquants"):
        return [_template_problem(part.strip()) for part in text.removeprefix("modèles manquants :").split(" ; ")]
    return [_error("", "Campagne", text)]


_PROBLEM = re.compile(r"^étape (\d+) \((\w+), modèle « ([^»]+) »\) : (.*)$")


def _template_problem(text: str) -> dict[str, str]:
    """A missing template (`template_problems`) said with the form's words: the step, the message's French name."""
    match = _PROBLEM.match(text)
    if not match:
        return _error("step0_template", "Messages", text)
    n, channel, template, reason = int(match[1]), match[2], match[3], match[4]
    name = set_label(template)
    reason = re.sub(r"canal de repli ([\w, ]+)", lambda m: "moyen de repli " + ", ".join(
        CHANNEL_NAMES.get(c.strip(), c.strip()) for c in m[1].split(",")), reason)
    reason = re.sub(r" \(attendu : [^)]*\)", "", reason)
    return _error(f"step{n - 1}_template", f"Étape {n} : message",
                  f"« {name} » par {CHANNEL_NAMES.get(channel, channel).lower()} : {reason}")


# --- preview, summary, diff --------------------------------------------------------------------------------------


def reach_total(declic: App, spec: CampaignSpec) -> int:
    """How many known businesses the campaign's segment selects today."""
    with declic.engine.connect() as conn:
        return segment_total(conn, spec, declic.today())


def preview(declic: App, spec: CampaignSpec, campaign_id: int | None = None) -> dict[str, Any]:
    """Reach by métier family and commune today, and each step rendered for one real business of the segment exactly
    as the dispatcher would send it (`orchestrator.app.message_preview`: the ambassador, offers and variant the planner
    would pick, real links)."""
    today = declic.today()
    with declic.engine.connect() as conn:
        counts = segment_counts(
            conn, spec.segment, today=today, territory=spec.effective_territory(), by=("family", "commune")
        )
        sample_row = segment_sample(conn, spec, today)
    reach = [
        {"family": label_for("metier_family", f), "commune": label_for("commune_code", c), "count": n}
        for f, c, n in counts
    ]
    samples = []
    if sample_row is not None:
        view = business_view(sample_row)
        for number, step in enumerate(spec.steps, start=1):
            heading = (f"Message {number} ({CHANNEL_NAMES.get(step.channel, step.channel).lower()}, "
                       f"« {set_label(step.template)} »)")
            try:
                leaving = leaving_message(declic.settings, declic.engine, declic.templates, spec, campaign_id,
                                          sample_row, step.channels()[0], step.template)
                samples.append({
                    "heading": heading,
                    "business": view.name or view.siret,
                    "channel": CHANNEL_NAMES.get(leaving.message.channel, leaving.message.channel),
                    "subject": leaving.message.subject,
                    "body": leaving.message.body,
                    "template": leaving.template,
                    "details": leaving.header_lines(),
                })
            except Exception:  # noqa: BLE001 - a message that cannot be written: the preview says so, in French
                samples.append({"heading": heading, "business": view.name or view.siret,
                                "error": "Ce message ne peut pas être écrit pour cette entreprise : vérifiez le "
                                         "message choisi pour ce moyen d'envoi."})
    schedule = None
    if spec.schedule is not None:
        upcoming = next_occurrences(spec.schedule.start, spec.schedule.rrule, spec.timezone(), declic.now(), count=3)
        schedule = {"rhythm": recurrence_fr.describe(spec.schedule.rrule),
                    "next": [fr_datetime(at, declic.zone) for at in upcoming]}
    return {"reach": reach, "total": sum(r["count"] for r in reach), "sample": samples[0] if samples else None,
            "samples": samples, "schedule": schedule, "changes": None, "total_before": None}


def overlaps_of(declic: App, spec: CampaignSpec, campaign_id: int | None) -> list[dict[str, Any]]:
    """Other owners' active campaigns this one would share businesses with, and who would win them."""
    with declic.engine.connect() as conn:
        return [o for o in campaign_overlaps(conn, spec, campaign_id, declic.today()) if o["id"] != campaign_id]


_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")


def _fr_date(value: dt.date | None) -> str:
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}" if value else ""


def _delay_words(step, first: bool) -> str:
    td = step.delay_td
    if td.total_seconds() == 0:
        amount = "aussitôt"
    elif td.seconds == 0:
        amount = f"{td.days} jour{'s' if td.days > 1 else ''} après"
    else:
        hours = int(td.total_seconds() // 3600)
        amount = f"{hours} h après" if td.total_seconds() % 3600 == 0 else f"{int(td.total_seconds() // 60)} min après"
    if amount == "aussitôt":
        return "aussitôt" if first else "aussitôt après le message précédent"
    return f"{amount} {'le déclencheur ou la date' if first else 'le message précédent'}"


def _age_words(value: str | int | None) -> str:
    return duration_words(value, "mo")  # the old `m` of an age is a month


def legal_form_choices(chosen: list[str]) -> dict[str, str]:
    """The legal forms the editor shows, by code: the usual ones, then any other code `chosen` holds, with INSEE's
    label and its code (so that editing a campaign never drops a form the page does not offer)."""
    choices = dict(LEGAL_FORM_LABELS)
    for code in chosen:
        if code not in choices:
            choices[code] = f"{legal_form_label(code) or 'Forme'} ({code})"
    return choices


def summary(spec: CampaignSpec) -> list[tuple[str, str]]:
    """The campaign in French, one line per thing a person may change (what the diff of an edit compares)."""
    seg = spec.segment
    trades = families()
    rows = [
        ("Titre", spec.title or "aucun"),
        ("Porteur", f"{spec.owner.name} ({territory_names(spec.owner.territory)})"),
        ("Expéditeur", ", ".join(filter(None, (spec.sender.name, spec.sender.address, spec.sender.email)))),
        ("Contact", ", ".join(filter(None, (spec.contact.name, spec.contact.metier, spec.contact.phone,
                                            spec.contact.email)))),
        ("Déclencheurs", ", ".join(TRIGGER_LABELS.get(t, t) for t in spec.triggers) or "aucun"),
        ("Calendrier", "aucun" if spec.schedule is None else
         f"{recurrence_fr.describe(spec.schedule.rrule)}, à partir du {_fr_date(spec.schedule.start.date())} "
         f"à {spec.schedule.start:%H} h {spec.schedule.start:%M}"),
        ("Période", " ".join(filter(None, (f"du {_fr_date(spec.starts_on)}" if spec.starts_on else "",
                                           f"au {_fr_date(spec.ends_on)}" if spec.ends_on else ""))) or "sans limite"),
        ("Métiers", ", ".join(trades[f].label if f in trades else f for f in seg.families) or "tous"),
        ("Territoire", territory_names(seg.territory) or "tout le territoire du porteur"),
        ("Effectif", ", ".join(HEADCOUNT_LABELS.get(h, h) for h in seg.headcount) or "tous"),
        ("Âge de l'entreprise", "tous" if seg.age is None or (seg.age.min is None and seg.age.max is None) else
         " et ".join(filter(None, (f"au moins {_age_words(seg.age.min)}" if seg.age.min is not None else "",
                                   f"au plus {_age_words(seg.age.max)}" if seg.age.max is not None else "")))),
        ("Étape de vie", ", ".join(STAGE_LABELS.get(s, s) for s in seg.stages) or "toutes"),
        ("Forme juridique", ", ".join(legal_form_choices(seg.legal_forms)[code] for code in seg.legal_forms)
         or "toutes"),
    ]
    for number, step in enumerate(spec.steps, start=1):
        rest = step.channels()[1:]
        words = [CHANNEL_NAMES.get(step.channel, step.channel), _delay_words(step, number == 1),
                 f"« {set_label(step.template)} »"]
        if step.condition:
            words.append(CONDITION_LABELS[step.condition].lower())
        words.append("repli : " + (", ".join(CHANNEL_NAMES.get(c, c).lower() for c in rest) if rest else "aucun"))
        rows.append((f"Message {number}", ", ".join(words)))
    caps = "; ".join(f"au plus {c.messages} message{'s' if c.messages > 1 else ''} en {c.days} jours"
                     for c in spec.pressure.caps) or "ceux de Déclic seulement"
    rows += [
        ("Plafonds de messages", f"{caps} ; attente maximale {duration_words(spec.pressure.max_defer, 'min')}"),
        ("Moments d'envoi", ("week-ends" if spec.timing.weekends else "jamais le week-end") + ", "
         + ("jours fériés" if spec.timing.holidays else "jamais les jours fériés")),
        ("Groupe témoin", f"{fr_number(spec.holdout)} %"),
        ("Variantes", ", ".join(f"{library_variants().get(v.name, v.name)} (part {v.weight})"
                                for v in spec.variants) or "aucune"),
    ]
    return rows


def fr_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}".replace(".", ",")


def spec_diff(before: CampaignSpec, after: CampaignSpec) -> list[dict[str, str]]:
    """What an edit changes: (field, before, after) for each line of the summary that differs."""
    old, new = dict(summary(before)), dict(summary(after))
    keys = list(dict.fromkeys([*old, *new]))
    return [{"field": k, "before": old.get(k, "aucun"), "after": new.get(k, "aucun")}
            for k in keys if old.get(k) != new.get(k)]


# --- the page ----------------------------------------------------------------------------------------------------


def _form_page(request, scope, form, *, errors=None, result=None, status_code=200):
    count = step_count(form)
    form.setdefault("editeur", EDITOR)
    return render(
        request,
        scope,
        "dash_campaign_form.html",
        status_code=status_code,
        form=form,
        errors=errors or [],
        result=result,
        families=families(),
        triggers={t: TRIGGER_LABELS.get(t, t) for t in TRIGGER_TYPES},
        channels={c: CHANNEL_NAMES.get(c, c) for c in CHANNELS},
        fallback_channels={c: CHANNEL_NAMES[c] for c in FALLBACK_CHAIN},
        step_sets=[library_sets(form.get(f"step{i}_channel") or "email") for i in range(count)],
        step_count=count,
        max_steps=MAX_STEPS,
        conditions=CONDITION_LABELS,
        fallback_modes=FALLBACK_MODES,
        headcounts=HEADCOUNT_LABELS,
        stages=STAGE_LABELS,
        legal_forms=legal_form_choices(form.get("legal_forms") or []),
        age_units=AGE_UNITS,
        variants=library_variants(),
        every=recurrence_fr.EVERY,
        day_kinds=recurrence_fr.DAY_KINDS,
        ranks=RANK_LABELS,
        weekdays=WEEKDAY_LABELS,
        kept_rule=recurrence_fr.describe(form.get("rec_rule")) if form.get("rec_every") == "garder" else "",
        max_caps=MAX_CAPS,
        places=territory_choices(scope),
        territory_text=territory_names(scope.territory),
    )


def form_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for a stored campaign spec (the inverse of `spec_from_form`)."""
    owner, sender, contact = spec.get("owner") or {}, spec.get("sender") or {}, spec.get("contact") or {}
    segment = spec.get("segment") or {}
    age = segment.get("age") or {}
    form: dict[str, Any] = {
        "editeur": EDITOR,
        "name": spec.get("name", ""),
        "title": spec.get("title") or "",
        "owner_name": owner.get("name", ""),
        "owner_territory": territory_names(owner.get("territory") or {}),
        "sender_name": sender.get("name", ""),
        "sender_address": sender.get("address", ""),
        "sender_email": sender.get("email") or "",
        "contact_name": contact.get("name", ""),
        "contact_metier": contact.get("metier") or "",
        "contact_phone": contact.get("phone") or "",
        "contact_email": contact.get("email") or "",
        "triggers": list(spec.get("triggers") or []),
        "families": list(segment.get("families") or []),
        "segment_territory": territory_names(segment.get("territory") or {}),
        "headcount": list(segment.get("headcount") or []),
        "stages": list(segment.get("stages") or []),
        "legal_forms": [str(code) for code in segment.get("legal_forms") or []],
        "holdout": fr_number(spec.get("holdout") or 0),
        "starts_on": spec.get("starts_on") or "",
        "ends_on": spec.get("ends_on") or "",
        "weekends": "oui" if (spec.get("timing") or {}).get("weekends") else "",
        "holidays": "oui" if (spec.get("timing") or {}).get("holidays") else "",
        "variants": [v["name"] for v in spec.get("variants") or []],
        **{f"weight_{v['name']}": str(v.get("weight", 1)) for v in spec.get("variants") or []},
    }
    for bound in ("min", "max"):
        match = re.fullmatch(r"\s*(\d+)\s*(mo|m|d|y)\s*", str(age.get(bound) or ""))
        if match:  # the old `m` of an age is a month
            form[f"age_{bound}"], form[f"age_{bound}_unit"] = match[1], "mo" if match[2] == "m" else match[2]
        elif age.get(bound) is not None:
            form[f"age_{bound}"], form[f"age_{bound}_unit"] = str(parse_age(age[bound]).days), "d"
    pressure = spec.get("pressure") or {}
    for i, cap in enumerate((pressure.get("caps") or [])[:MAX_CAPS]):
        form[f"cap{i}_messages"], form[f"cap{i}_days"] = str(cap["messages"]), str(cap["days"])
    form["max_defer"] = _days(pressure.get("max_defer") or "14d")
    schedule = spec.get("schedule")
    form.update(recurrence_fr.form_fields(None))
    if schedule:
        start = dt.datetime.fromisoformat(str(schedule["start"]))
        form.update(schedule_start=start.date().isoformat(), schedule_time=f"{start:%H:%M}")
        rule = schedule.get("rrule")
        choice = recurrence_fr.from_rule(rule) if rule else None
        if rule and choice is None:
            form.update(rec_every="garder", rec_rule=rule)
        else:
            form.update(recurrence_fr.form_fields(choice))
        if schedule.get("min_interval") is not None:
            form["min_interval"] = _days(schedule["min_interval"])
    steps = (spec.get("steps") or [])[:MAX_STEPS]
    form["steps_count"] = str(max(1, len(steps)))
    for i, step in enumerate(steps):
        fallback = step.get("fallback")
        form.update({
            f"step{i}_channel": step.get("channel", "email"),
            f"step{i}_delay": _days(step.get("delay", "0d")),
            f"step{i}_template": step.get("template", ""),
            f"step{i}_if": step.get("if") or step.get("condition") or "",
            f"step{i}_fallback_mode": "defaut" if fallback is None else "aucun" if not fallback else "choisis",
            f"step{i}_fallback": list(fallback or []),
        })
    return form


def new_form(scope: accounts.Scope) -> dict[str, Any]:
    """An empty campaign with sensible defaults: one e-mail at creation, 10 % kept as a control group."""
    return {
        "editeur": EDITOR,
        "owner_name": scope.name if scope.role == "collectivite" else "",
        "triggers": ["creation"],
        "families": [],
        "steps_count": "1",
        "step0_channel": "email",
        "step0_delay": "0",
        "step0_template": "creation",
        "step0_fallback_mode": "defaut",
        "holdout": "10",
        "max_defer": "14",
        **recurrence_fr.form_fields(None),
    }


_STEP_KEYS = ("channel", "delay", "template", "if", "fallback_mode", "fallback")


def add_or_remove_step(form: dict[str, Any], action: str) -> dict[str, Any]:
    """The form with one more step ("ajouter-etape", a reminder by e-mail a week later if no click) or without
    step n ("retirer-<n>"), the later steps moving up: no JavaScript, the page comes back with the change."""
    count = step_count(form)
    out = dict(form)
    if action == "ajouter-etape" and count < MAX_STEPS:
        out.update({f"step{count}_channel": form.get(f"step{count - 1}_channel") or "email",
                    f"step{count}_delay": "7", f"step{count}_if": "no_click",
                    f"step{count}_template": form.get(f"step{count - 1}_template") or "creation",
                    f"step{count}_fallback_mode": "defaut", f"step{count}_fallback": []})
        out["steps_count"] = str(count + 1)
    elif action.startswith("retirer-") and action[8:].isdigit() and count > 1:
        gone = int(action[8:])
        for i in range(gone, count):
            for key in _STEP_KEYS:
                out.pop(f"step{i}_{key}", None)
                if i + 1 < count and f"step{i + 1}_{key}" in form:
                    out[f"step{i}_{key}"] = form[f"step{i + 1}_{key}"]
        out.pop("step0_if", None)
        out["steps_count"] = str(count - 1)
    return out


def merge_into(existing: dict[str, Any], edited: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with the form's fields replaced: what the form cannot show (send windows by trade,
    priority, co-owners, the sender's logo and mailboxes, other segment filters...) is kept, never dropped.
    A post from the editor (with `pressure`, `timing`, `variants`) replaces those too, and the steps whole."""
    merged = copy.deepcopy(existing)
    for key in ("title", "owner", "triggers", "holdout", "starts_on", "ends_on"):
        if key in edited:
            merged[key] = edited[key]
        else:
            merged.pop(key, None)
    for key in ("sender", "contact"):  # the form shows some of their fields; the others stay
        merged[key] = {**(existing.get(key) or {}), **edited[key]}
    full = "pressure" in edited
    segment = dict(merged.get("segment") or {})
    segment["families"] = edited["segment"].get("families", [])
    if "territory" in edited["segment"]:
        segment["territory"] = edited["segment"]["territory"]
    else:
        segment.pop("territory", None)
    if full:
        for key in ("headcount", "stages", "legal_forms", "age"):
            segment[key] = edited["segment"].get(key)
    merged["segment"] = segment
    if full:
        merged["steps"] = edited["steps"]
        merged["pressure"] = {**(existing.get("pressure") or {}), **edited["pressure"]}
        merged["timing"] = {**(existing.get("timing") or {}), **edited["timing"]}
        merged["variants"] = edited["variants"]
        if edited.get("schedule"):
            kept = {k: v for k, v in (existing.get("schedule") or {}).items() if k in ("timezone", "rate_per_hour")}
            merged["schedule"] = {**kept, **edited["schedule"]}
        else:
            merged.pop("schedule", None)
    else:
        old_steps = existing.get("steps") or []
        merged["steps"] = [
            {**(old_steps[i] if i < len(old_steps) else {}), **step} for i, step in enumerate(edited["steps"])
        ]
    return merged


def _visible(engine, scope: accounts.Scope, campaign_id: str | int | None):
    """The campaign `campaign_id` if the scope sees it; None when no id is given; 404 otherwise."""
    if not campaign_id:
        return None
    try:
        wanted = int(campaign_id)
    except ValueError as exc:
        raise HTTPException(404, "Campagne introuvable.") from exc
    with engine.connect() as conn:
        row = accounts.campaign(conn, scope, wanted)
    if row is None:
        raise HTTPException(404, "Campagne introuvable.")
    return row


def _before(declic: App, stored: dict[str, Any], spec: CampaignSpec) -> tuple[list[dict[str, str]], int | None]:
    """What an edit changes (field, avant, après) and the reach before it (None if the stored spec no longer
    reads, e.g. a template removed since)."""
    try:
        before = CampaignSpec.model_validate(stored)
    except (ValidationError, ValueError):
        return [], None
    return spec_diff(before, spec), reach_total(declic, before)


def _owner_text(owner: dict[str, Any]) -> str:
    territory = owner.get("territory") or {}
    codes = ", ".join(f"{k}:{c}" for k, v in territory.items() for c in v or [])
    return f"{owner.get('name') or '?'} ({codes or 'aucun territoire'})"


def _same_owner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("name") or "") == (b.get("name") or "") and accounts.same_territory(
        a.get("territory") or {}, b.get("territory") or {}
    )


def owner_fingerprint(owner: dict[str, Any]) -> str:
    """What the preview of an owner change carries to the save, so that only the change shown is saved."""
    return hashlib.sha256(json.dumps(owner, sort_keys=True).encode()).hexdigest()[:16]


def _copy_form(row, scope: accounts.Scope) -> dict[str, Any]:
    """The form of a new campaign starting from `row`, under the copier's name and territory."""
    form = form_from_spec(row.spec)
    form.update(name="", copie=str(row.id), copied_from=row.name)
    if scope.role == "collectivite":
        form.update(owner_name=scope.name, owner_territory=territory_names(scope.territory))
    return form


@router.get("/nouvelle", response_class=HTMLResponse)
def new_campaign(
    request: Request, scope: ScopeDep, engine: EngineDep, depuis: int | None = None, copie: int | None = None
):
    """An empty campaign form with sensible defaults, the form of a campaign to edit (`depuis`, its owner
    or an operator), or a copy of a campaign the user sees (`copie`, or `depuis` for one it does not own)."""
    if not scope.sees_campaigns:
        raise HTTPException(403, "Cette page n'est pas ouverte à votre rôle.")
    existing = _visible(engine, scope, depuis)
    if existing is not None and accounts.owns_campaign(scope, existing):
        return _form_page(request, scope, {**form_from_spec(existing.spec), "depuis": str(existing.id)})
    source = existing if existing is not None else _visible(engine, scope, copie)
    if source is not None:
        return _form_page(request, scope, _copy_form(source, scope))
    form = new_form(scope)
    return _form_page(request, scope, form)


@router.post("/nouvelle", response_class=HTMLResponse)
async def submit_campaign(request: Request, scope: ScopeDep, declic: AppDep):
    """Preview (action=apercu) or save (action=enregistrer) the campaign written in the form."""
    if not scope.sees_campaigns:
        raise HTTPException(403, "Cette page n'est pas ouverte à votre rôle.")
    engine = declic.engine
    raw = await request.form()
    require_csrf(request, str(raw.get("csrf") or ""))
    lists = {"triggers", "families", "headcount", "stages", "legal_forms", "variants",
             *(f"step{i}_fallback" for i in range(MAX_STEPS))}
    form: dict[str, Any] = {k: str(v) for k, v in raw.items() if k not in lists}
    for key in lists:
        form[key] = [str(v) for v in raw.getlist(key)]
    existing = await run_in_threadpool(_visible, engine, scope, form.get("depuis"))
    source = None if existing is not None else await run_in_threadpool(_visible, engine, scope, form.get("copie"))
    if existing is not None and not accounts.owns_campaign(scope, existing):
        raise HTTPException(403, "Seule la collectivité qui porte cette campagne peut la modifier : faites-en "
                                 "une copie à votre nom.")
    if source is not None:
        form["copied_from"] = source.name
    action = str(form.get("action") or "")
    if action == "ajouter-etape" or action.startswith("retirer-"):
        if existing is not None:
            form["name"] = existing.name
        return _form_page(request, scope, add_or_remove_step(form, action))
    owner_change = None
    try:
        document = spec_from_form(form, scope)
        if existing is not None:
            # Editing keeps the campaign's name (a new name would be a new campaign) and what the form hides;
            # the owner stays unless an operator changes it.
            document = merge_into(existing.spec, {**document, "name": existing.name})
            form["name"] = existing.name
            before = existing.spec.get("owner") or {}
            if not scope.is_operator:
                document["owner"] = copy.deepcopy(before)
            elif not _same_owner(before, document["owner"]):
                owner_change = {"before": _owner_text(before), "after": _owner_text(document["owner"]),
                                "fingerprint": owner_fingerprint(document["owner"])}
        elif source is not None:
            # A copy keeps what the form hides of the original, under the copier's name and territory.
            document = {**merge_into(source.spec, document), "name": document["name"]}
        spec = load_spec(document)
    except (ValidationError, ValueError) as exc:
        return _form_page(request, scope, form, errors=validation_errors(exc), status_code=400)

    def name_taken() -> bool:
        with engine.connect() as conn:
            row = campaign_by_name(conn, spec.name)
            return row is not None and (existing is None or row.id != existing.id)

    taken = [_error("name", "Nom court", f"le nom « {spec.name} » est déjà pris, choisissez-en un autre")]
    if await run_in_threadpool(name_taken):
        return _form_page(request, scope, form, status_code=400, errors=taken)
    confirmed = owner_change is None or form.get("porteur") == owner_change["fingerprint"]
    if form.get("action") != "enregistrer" or not confirmed:
        result = await run_in_threadpool(preview, declic, spec, existing.id if existing is not None else None)
        result["owner_change"] = owner_change
        if existing is not None:
            result["changes"], result["total_before"] = await run_in_threadpool(_before, declic, existing.spec, spec)
        result["overlaps"] = await run_in_threadpool(
            overlaps_of, declic, spec, existing.id if existing is not None else None)
        result["warnings"] = spec_warnings(spec)
        errors = [] if confirmed else [_error(
            "owner_name", "Porteur", f"il change : {owner_change['before']} → {owner_change['after']}. Vérifiez "
            "l'aperçu, puis enregistrez à nouveau pour confirmer.")]
        return _form_page(request, scope, form, result=result, errors=errors, status_code=200 if confirmed else 409)
    try:
        saved = await run_in_threadpool(
            lambda: campaigns.save(declic, spec, by=scope, create_only=existing is None,
                                   campaign_id=existing.id if existing is not None else None))
    except campaigns.CampaignNameTaken:
        return _form_page(request, scope, form, status_code=400, errors=taken)
    return RedirectResponse(f"/tableau/campagnes/{saved.campaign_id}", status_code=303)
