"""Words for people: what `templates.render` adds to every context before a template sees it.

- ``words``: how the message names the business and its trade, from the reviewed wording of its NAF sub-class
  (``segments/data/trades_naf.csv``), else its family's (``trades.yaml``: ``business``, ``business_a``,
  ``group``), else the generic "votre entreprise". Never an INSEE label.
- ``words.sms_business`` / ``words.sms_business_a``: the same noun for an SMS, which must stay in GSM-7 and short
  (2 segments with the link, the source and STOP): the sub-class's own if it is GSM-7 and at most
  ``SMS_NOUN_MAX`` characters, else its reviewed SMS form (``sms_business`` in ``trades_naf.csv``, written around
  ê, â, î, ô, ç, û), else the family's noun, else "votre entreprise". Accents are never stripped.
  ``words.sms_nouns`` lists it then the shorter forms (the family's, the generic) an SMS uses when it must.
- ``origin``: where the business's data came from (GDPR art. 14), in words. The planner stores the raw sources
  (``{"event": "sirene" | "bodacc" | "calendar" | <partner name>, "email": ..., "phone": ..., "address": ...}``,
  the business's ``*_source`` columns); each becomes ``{"long": "le répertoire Sirene de l'INSEE", "short":
  "Sirene (INSEE)"}`` and ``origin.<channel>`` lists the distinct sources behind a message of that channel
  (the event's, then the contact's: e-mail, phone or postal address).
- phones of the ambassador and the sender in the French national format ("02 99 00 00 00"), as people read them.
- the ambassador's ``role``: ``pair`` (an owner of the trade) or ``conseiller`` (an adviser, an accounting firm,
  the campaign's fallback contact), who puts the owner in touch with a peer.

Filters for the enumerated values of offers: ``offer_format`` (``a_distance`` -> "à distance"), ``offer_kind``
(``formation_courte`` -> "formation courte"), ``duration`` ("1h30" -> "1 h 30"). Pure; the lookups are cached.
"""

from __future__ import annotations

import csv
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import phonenumbers

from orchestrator.core.phones import OVERSEAS_REGIONS
from segments.taxonomy import normalize_naf, trade_wording

TRADES_NAF = Path(__file__).resolve().parent.parent / "segments" / "data" / "trades_naf.csv"
SMS_NOUN_MAX = 30
PEER, ADVISER = "pair", "conseiller"
GENERIC = {"business": "votre entreprise", "business_a": "une entreprise", "trade": "les petites entreprises",
           "catch_all": True}

OFFER_FORMATS = {"sur_place": "sur place", "a_distance": "à distance", "mixte": "sur place ou à distance"}
OFFER_KINDS = {"diagnostic": "diagnostic", "formation_courte": "formation courte",
               "accompagnement": "accompagnement", "coup_de_pouce": "coup de pouce", "financement": "aide financière",
               "atelier": "atelier"}
_DURATION = re.compile(r"(\d+)\s*h(?:\s*(\d{2}))?\b", re.IGNORECASE)
_MINUTES = re.compile(r"(\d+)\s*(?:mn|min|minutes?)\b", re.IGNORECASE)


# Where data come from, as a message says it: (a noun phrase, the short form of an SMS). Any other value is a
# partner's name, said as written. "calendar" is the law's calendar, not a source of personal data.
SOURCES = {
    "sirene": ("le répertoire Sirene de l'INSEE", "Sirene (INSEE)"),
    "sirene-api": ("le répertoire Sirene de l'INSEE", "Sirene (INSEE)"),
    "bodacc": ("le BODACC (journal officiel des annonces des entreprises)", "BODACC"),
    "bodacc-api": ("le BODACC (journal officiel des annonces des entreprises)", "BODACC"),
    "landing": ("vous-même, sur notre page", "vous-même"),
}
NOT_A_SOURCE = {"calendar", ""}
# Why a business gets a message, by trigger: "Nous écrivons aux entreprises <reason>."
ORIGIN_REASONS = {
    "creation": "qui viennent d'être créées",
    "first_hire": "qui embauchent pour la première fois",
    "takeover": "qui changent de propriétaire",
    "consolidation": "installées depuis quelques années",
    "critical_period": "qui traversent peut-être une période plus calme",
    "deadline": "que les factures électroniques concernent",
    "collective_procedure": "après une décision du tribunal publiée au BODACC",
}
DEFAULT_REASON = "de son territoire"
SMS_SOURCE_MAX = 24
CHANNEL_CONTACT = {"email": "email", "sms": "phone", "call": "phone", "letter": "address"}


@cache
def _gsm7_alphabet() -> frozenset[str]:
    from templates.lint import GSM7_BASIC, GSM7_EXTENSION  # lint reads templates lazily: no import cycle

    return GSM7_BASIC | GSM7_EXTENSION


def gsm7(text: str) -> bool:
    """True when every character of the text is in the GSM-7 alphabet (an SMS stays at 160 a segment)."""
    return _gsm7_alphabet().issuperset(text)


@cache
def _sms_forms() -> dict[str, tuple[str, str]]:
    """The reviewed SMS nouns of the sub-classes whose noun has a letter outside GSM-7 (``trades_naf.csv``)."""
    with TRADES_NAF.open(encoding="utf-8", newline="") as fh:
        return {row["naf_code"]: (row["sms_business"], row["sms_business_a"])
                for row in csv.DictReader(fh) if row.get("sms_business")}


def _sms_noun(*candidates: str | None) -> str:
    for noun in candidates:
        if noun and len(noun) <= SMS_NOUN_MAX and gsm7(noun):
            return noun
    return candidates[-1] or ""


def words_for(business: dict[str, Any] | None, trades: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The business's words: its NAF sub-class's, else its family's (``trades``), else the generic ones; with
    their SMS forms (GSM-7, short)."""
    business = business or {}
    family = trades.get(business.get("family") or "")
    family_nouns = ((family["business"], family["business_a"]) if family and family.get("business")
                    else (None, None))
    found = trade_wording(business.get("naf"))
    if found is not None:
        out = {"business": found.business, "business_a": found.business_a, "trade": found.trade,
               "catch_all": found.catch_all}
        reviewed = _sms_forms().get(normalize_naf(business["naf"]), (None, None))
    elif family_nouns[0]:
        out = {"business": family_nouns[0], "business_a": family_nouns[1], "trade": family["group"],
               "catch_all": False}
        reviewed = (None, None)
    else:
        out, reviewed = dict(GENERIC), (None, None)
    out["sms_business"] = _sms_noun(out["business"], reviewed[0], family_nouns[0], GENERIC["business"])
    out["sms_business_a"] = _sms_noun(out["business_a"], reviewed[1], family_nouns[1], GENERIC["business_a"])
    # shorter forms an SMS falls back to when the whole text would not fit 2 segments: the family's, the generic
    nouns = [[out["sms_business"], out["sms_business_a"]]]
    for pair in ([_sms_noun(family_nouns[0], GENERIC["business"]), _sms_noun(family_nouns[1], GENERIC["business_a"])],
                 [GENERIC["business"], GENERIC["business_a"]]):
        if pair not in nouns and len(pair[0]) <= len(nouns[-1][0]):
            nouns.append(pair)
    out["sms_nouns"] = nouns
    return out


def source_words(source: str | None) -> dict[str, str] | None:
    """One source in words: ``{"long": "le répertoire Sirene de l'INSEE", "short": "Sirene (INSEE)"}``; a
    partner's name is said as written ("BGE 35"); an SMS says "un partenaire" when it is long or not GSM-7 (the
    landing page names it)."""
    text = " ".join(str(source or "").split())
    if text.lower() in NOT_A_SOURCE:
        return None
    if text.lower() in SOURCES:
        long, short = SOURCES[text.lower()]
        return {"long": long, "short": short}
    if text.startswith("partner:"):  # an unresolved partner reference: never shown as a code
        return {"long": "un partenaire de la campagne", "short": "un partenaire"}
    short = text if len(text) <= SMS_SOURCE_MAX and gsm7(text) else "un partenaire"
    return {"long": text, "short": short}


def origin_words(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The sources of a message in words, per channel (``origin.email``, ``origin.sms`` ...): the event's (or,
    without an event, the postal address's, which is Sirene's for a business Sirene placed), then the
    contact's for that channel, without repeats. Empty lists when nothing is known."""
    raw = raw or {}
    out: dict[str, Any] = {"known": bool(raw), "reasons": ORIGIN_REASONS}
    event = source_words(raw.get("event")) or source_words(raw.get("address"))
    for channel, contact in CHANNEL_CONTACT.items():
        found = []
        for item in (event, source_words(raw.get(contact))):
            if item and item not in found:
                found.append(item)
        out[channel] = found
    return out


@lru_cache(maxsize=4096)
def phone_fr(raw: str | None) -> str | None:
    """A phone number in the French national format ("02 99 00 00 00", "0262 12 34 56" overseas); text that is
    no valid number is left as written."""
    if not raw:
        return raw
    text = str(raw).strip()
    for region in ("FR", *OVERSEAS_REGIONS):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return text
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return text


def offer_format(value: Any) -> str:
    """An offer's format in words: ``a_distance`` -> "à distance"; free text is kept."""
    text = str(value or "").strip()
    return OFFER_FORMATS.get(text, text.replace("_", " "))


def offer_kind(value: Any) -> str:
    """An offer's kind in words: ``formation_courte`` -> "formation courte"; free text is kept."""
    text = str(value or "").strip()
    return OFFER_KINDS.get(text, text.replace("_", " "))


def duration_fr(value: Any) -> str:
    """A duration as written in French: "1h30" -> "1 h 30", "2h" -> "2 h", "15min" -> "15 min"."""
    text = str(value or "").strip()
    text = _DURATION.sub(lambda m: f"{m[1]} h {m[2]}" if m[2] else f"{m[1]} h", text)
    return _MINUTES.sub(lambda m: f"{m[1]} min", text)


def _with_role(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if person is None:
        return None
    out = dict(person)
    out["phone"] = phone_fr(out.get("phone"))
    # an SMS says a name or a trade only in GSM-7: a person's name is never reworded nor stripped of its accents,
    # so one with ç, ô, ê ... is left out of the SMS (the landing page gives it)
    out["sms_name"] = out.get("name") if out.get("name") and gsm7(str(out["name"])) else None
    out["sms_metier"] = out.get("metier") if out.get("metier") and gsm7(str(out["metier"])) else None
    out.setdefault("role", ADVISER)  # never present someone as a peer of the trade unless it is known
    if out["role"] not in (PEER, ADVISER):
        out["role"] = ADVISER
    return out


def prepare(context: dict[str, Any], trades: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The context a template sees: `words` and `origin` in words, phones in national format, the ambassador's
    role set."""
    out = dict(context)
    if "words" not in out:
        business = out.get("business")
        items = _plain_items(business, ("family", "naf"))
        words = _remembered(words_for, None if items is None else (id(trades), items), business, trades)
        out["words"] = dict(words, sms_nouns=[list(pair) for pair in words["sms_nouns"]])
    if not (isinstance(out.get("origin"), dict) and "known" in out["origin"]):  # raw sources, or none
        origin = out.get("origin")
        said = _remembered(origin_words, _plain_items(origin), origin)
        out["origin"] = {**said, **{channel: [dict(item) for item in said[channel]] for channel in CHANNEL_CONTACT}}
    if isinstance(out.get("ambassador"), dict):
        ambassador = out["ambassador"]
        out["ambassador"] = dict(_remembered(_with_role, _plain_items(ambassador), ambassador))
    if isinstance(out.get("sender"), dict) and out["sender"].get("phone"):
        out["sender"] = dict(out["sender"], phone=phone_fr(out["sender"]["phone"]))
    return out


# What `prepare` derives, remembered by the plain values it is derived from: a campaign's messages share few
# trades, sources and peers. Every message gets its own copy of what is made for it (as a fresh call would give).
_REMEMBERED: dict[tuple, Any] = {}
_REMEMBERED_SIZE = 10_000


def _plain_items(value: Any, keys: tuple[str, ...] | None = None) -> tuple | None:
    """The (key, value) pairs of a dict of plain scalars (only `keys`, when given) as a key; None otherwise."""
    if type(value) is not dict:
        return None
    items = value.items() if keys is None else ((k, value.get(k)) for k in keys)
    out = []
    for key, item in items:
        if item is not None and type(item) not in (str, int, bool):
            return None
        out.append((key, type(item), item))
    return tuple(out)


def _remembered(fn: Any, key: tuple | None, *args: Any) -> Any:
    if key is None:
        return fn(*args)
    key = (fn, key)
    found = _REMEMBERED.get(key)
    if found is None:
        if len(_REMEMBERED) >= _REMEMBERED_SIZE:
            _REMEMBERED.clear()
        found = _REMEMBERED[key] = fn(*args)
    return found

