"""Words for people: what `templates.render` adds to every context before a template sees it.

- ``words``: how the message names the business and its trade, from the reviewed wording of its NAF sub-class
  (``segments/data/trades_naf.csv``), else its family's (``trades.yaml``: ``business``, ``business_a``,
  ``group``), else the generic "votre entreprise". Never an INSEE label.
- phones of the ambassador and the sender in the French national format ("02 99 00 00 00"), as people read them.
- the ambassador's ``role``: ``pair`` (an owner of the trade) or ``conseiller`` (an adviser, an accounting firm,
  the campaign's fallback contact), who puts the owner in touch with a peer.

Filters for the enumerated values of offers: ``offer_format`` (``a_distance`` -> "à distance"), ``offer_kind``
(``formation_courte`` -> "formation courte"), ``duration`` ("1h30" -> "1 h 30"). Pure; the lookups are cached.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers

from integrations.phones import OVERSEAS_REGIONS
from segments.taxonomy import trade_wording

PEER, ADVISER = "pair", "conseiller"
GENERIC = {"business": "votre entreprise", "business_a": "une entreprise", "trade": "les petites entreprises",
           "catch_all": True}

OFFER_FORMATS = {"sur_place": "sur place", "a_distance": "à distance", "mixte": "sur place ou à distance"}
OFFER_KINDS = {"diagnostic": "diagnostic", "formation_courte": "formation courte",
               "accompagnement": "accompagnement", "coup_de_pouce": "coup de pouce", "financement": "aide financière",
               "atelier": "atelier"}
_DURATION = re.compile(r"(\d+)\s*h\s*(\d{2})?\b", re.IGNORECASE)
_MINUTES = re.compile(r"(\d+)\s*(?:mn|min|minutes?)\b", re.IGNORECASE)


def words_for(business: dict[str, Any] | None, trades: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The business's words: its NAF sub-class's, else its family's (``trades``), else the generic ones."""
    business = business or {}
    found = trade_wording(business.get("naf"))
    if found is not None:
        return {"business": found.business, "business_a": found.business_a, "trade": found.trade,
                "catch_all": found.catch_all}
    family = trades.get(business.get("family") or "")
    if family and family.get("business"):
        return {"business": family["business"], "business_a": family["business_a"], "trade": family["group"],
                "catch_all": False}
    return dict(GENERIC)


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
    out.setdefault("role", ADVISER)  # never present someone as a peer of the trade unless it is known
    if out["role"] not in (PEER, ADVISER):
        out["role"] = ADVISER
    return out


def prepare(context: dict[str, Any], trades: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The context a template sees: `words` added, phones in national format, the ambassador's role set."""
    out = dict(context)
    if "words" not in out:
        out["words"] = words_for(out.get("business"), trades)
    if isinstance(out.get("ambassador"), dict):
        out["ambassador"] = _with_role(out["ambassador"])
    if isinstance(out.get("sender"), dict) and out["sender"].get("phone"):
        out["sender"] = dict(out["sender"], phone=phone_fr(out["sender"]["phone"]))
    return out
