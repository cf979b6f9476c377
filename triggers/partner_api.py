"""The partner event format (API and files share it): schema, field checks and normalisation.

An item is validated on its own, so one bad item in a batch of 1,000 is rejected with its field and
reason while the others go in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from stdnum.fr import siret as siret_check

from orchestrator.core.phones import InvalidNumber, normalise_french_number
from segments.taxonomy import naf_entry, normalize_naf
from triggers.model import (
    ADOPTION_TYPES,
    EVENT_TYPES,
    BusinessFacts,
    ContactPoint,
    EventIn,
    Reject,
    check_adoption_category,
)
from triggers.payload_schema import Dropped, minimise
from triggers.sirene import luhn_ok, siret_is_valid

MAX_BATCH = 1000
# An event's `payload` (partner-specific details, kept as JSON; only the fields declared for its type are stored,
# `triggers.payload_schema`): at most this many bytes once encoded, nested at most this deep.
MAX_PAYLOAD_BYTES = 16_384
MAX_PAYLOAD_DEPTH = 8
MAX_ITEM_DEPTH = MAX_PAYLOAD_DEPTH + 2  # the item itself, then `payload`


def check_siret(value: str) -> str:
    """A valid SIRET without spaces, or ValueError saying why."""
    text = str(value)
    # 14 ASCII digits are already compact (python-stdnum's clean-up costs more than the key check).
    compact = text if len(text) == 14 and text.isascii() and text.isdigit() else siret_check.compact(text)
    if len(compact) != 14 or not compact.isdigit():
        raise ValueError("le SIRET doit compter 14 chiffres")
    if not siret_is_valid(compact):  # python-stdnum's rules, with the Sirene reader's fast path
        raise ValueError("SIRET invalide (clé de contrôle fausse)")
    return compact


# Fast paths: the common shapes of what partners send, decided without the full validators' parsing, with the
# same verdicts (tests/unit/test_partner_fast_path.py compares both paths on generated inputs). Anything else,
# and every refusal, goes through the full validators (phonenumbers, email-validator) and their reasons.

# "06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78", "+33612345678": one optional
# separator between digits; a mainland number of 9 digits after the 0 or +33.
_FRENCH_PHONE = re.compile(r"(?:0|\+33[ .-]?)([1-9](?:[ .-]?[0-9]){8})")


_SEPARATORS = str.maketrans("", "", " .-")


@lru_cache(maxsize=1)
def _mainland_pattern() -> re.Pattern:
    # phonenumbers' own metadata for +33: a number is valid when it matches the general pattern and the
    # pattern of one number type (fixed line, mobile, toll free...), as `phonenumbers.is_valid_number` decides.
    # One pattern for both: the general one as a lookahead over the whole number, then the types' patterns as one
    # alternation (it matches a whole number when one of them does): one call, not one per pattern.
    meta = phonenumbers.PhoneMetadata.metadata_for_region("FR")
    descs = (meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number, meta.pager,
             meta.uan, meta.voicemail, meta.fixed_line, meta.mobile)
    types = [f"(?:{d.national_number_pattern})" for d in descs
             if d is not None and d.national_number_pattern and (not d.possible_length or 9 in d.possible_length)]
    return re.compile(f"(?=(?:{meta.general_desc.national_number_pattern})\\Z)(?:{'|'.join(types)})")


def _fast_phone(text: str) -> str | None:
    """The E.164 form of a valid mainland number in a common shape; None when the full path must decide."""
    shape = _FRENCH_PHONE.fullmatch(text)
    if shape is None:
        return None
    national = shape.group(1).translate(_SEPARATORS)
    if _mainland_pattern().fullmatch(national):
        return "+33" + national
    return None


def check_phone(value: str) -> str:
    """A French phone number (mainland or overseas) in E.164, or ValueError (foreign numbers too)."""
    text = str(value)
    fast = _fast_phone(text.strip())
    if fast is not None:
        return fast
    try:
        return normalise_french_number(text)
    except InvalidNumber as exc:
        if exc.reason.startswith("numéro étranger"):
            raise ValueError(exc.reason) from exc
        word = "illisible" if exc.unreadable else "invalide"
        raise ValueError(f"numéro de téléphone {word}: {value}") from exc


# A plain ASCII address: dot-atoms of letters, digits, "_", "+" and "-" before the @; host names of letters,
# digits and inner hyphens after it, ending with a TLD of letters.
# One pattern for the whole address (neither part takes "@" nor anything not ASCII): one match, then its groups.
_PLAIN_ADDRESS = re.compile(r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
                            r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _special_use(domain: str) -> bool:
    """True when `domain` is a special-use name or ends with "." and one (email-validator refuses them): each
    suffix after a dot looked up in a set, rather than a comparison with every name."""
    if domain in _SPECIAL_USE:
        return True
    dot = domain.find(".")
    while dot != -1:
        if domain[dot + 1:] in _SPECIAL_USE:
            return True
        dot = domain.find(".", dot + 1)
    return False


def _fast_email(text: str) -> str | None:
    """The normalised form of a plain ASCII address (domain lower-cased, as email-validator gives it); None
    when the full validator must decide (anything unusual, and every refusal)."""
    if len(text) > 254:
        return None
    plain = _PLAIN_ADDRESS.fullmatch(text)
    if plain is None:
        return None
    local, domain = plain.groups()
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None
    domain = domain.lower()
    if _special_use(domain):
        return None
    return f"{local}@{domain}"


def check_email(value: str) -> str:
    """A syntactically valid e-mail address, normalised (domain lower-cased); no DNS lookup."""
    fast = _fast_email(value) if isinstance(value, str) else None
    if fast is not None:
        return fast
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"adresse e-mail invalide: {exc}") from exc


def parse_date(value: Any) -> dt.date:
    """A date from `YYYY-MM-DD` or `DD/MM/YYYY`."""
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if len(text) == 10 and text[4] == "-":
        try:
            return dt.date.fromisoformat(text)  # the common case, parsed in C
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"date illisible: {text!r} (attendu AAAA-MM-JJ ou JJ/MM/AAAA)")


class ContactIn(BaseModel):
    """Contact points a partner knows, with the owner's consent to be called when given."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    phone: str | None = None
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=100)
    consent: bool = False

    _email = field_validator("email")(lambda v: check_email(v) if v else None)
    _phone = field_validator("phone")(lambda v: check_phone(v) if v else None)


class BusinessIn(BaseModel):
    """Optional business details sent with an event."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    naf_code: str | None = Field(default=None, max_length=8)
    commune_code: str | None = Field(default=None, pattern=r"^[0-9][0-9AB][0-9]{3}$")
    tranche_effectifs: str | None = Field(default=None, max_length=2)
    creation_date: dt.date | None = None

    @field_validator("naf_code")
    @classmethod
    def _naf(cls, value: str | None) -> str | None:
        if not value:
            return None
        code = normalize_naf(value)
        if naf_entry(code) is None:
            raise ValueError(f"code NAF inconnu: {value}")
        return code

    @field_validator("creation_date", mode="before")
    @classmethod
    def _creation(cls, value: Any) -> Any:
        return parse_date(value) if value not in (None, "") else None


class EventItem(BaseModel):
    """One partner event: a life-cycle trigger or a conversion."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=120, description="the partner's own id, unique per partner")
    type: str = Field(description="creation, first_hire, takeover, critical_period, ... or a conversion")
    siret: str
    occurred_on: dt.date
    business: BusinessIn | None = None
    contact: ContactIn | None = None
    payload: dict[str, Any] | None = None
    category: str | None = Field(
        None, validate_default=True, description="tool_adopted only: quotes_invoices, einvoicing_platform, "
        "payment, booking, online_visibility or management")

    _siret = field_validator("siret")(lambda v: check_siret(v))

    @field_validator("category")
    @classmethod
    def _category(cls, value: Any, info: ValidationInfo) -> str | None:
        adoption = info.data.get("type") in ADOPTION_TYPES
        if value in (None, ""):
            if adoption:
                raise ValueError("catégorie obligatoire pour une adoption (tool_adopted)")
            return None
        if not adoption:
            raise ValueError("une catégorie ne va qu'avec le type tool_adopted")
        return check_adoption_category(value)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"type inconnu: {value} (connus: {', '.join(EVENT_TYPES)})")
        return value

    @field_validator("occurred_on", mode="before")
    @classmethod
    def _occurred(cls, value: Any, info: ValidationInfo) -> dt.date:
        day = parse_date(value)
        # "Today" is the caller's (the App's clock in its zone), given as the validation context.
        today = (info.context or {}).get("today")
        if not isinstance(today, dt.date):
            raise TypeError("EventItem is validated with context={'today': date} (see validate_item)")
        if day > today + dt.timedelta(days=1):
            raise ValueError("date dans le futur")
        return day


    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload trop volumineux ({size} octets, au plus {MAX_PAYLOAD_BYTES})")
        return value


class EventBatch(BaseModel):
    """A batch of events (1 to 1,000); each item is checked on its own, so a bad one is rejected with its
    field and reason and the others go in."""

    events: list[EventItem] = Field(min_length=1, max_length=MAX_BATCH)


# Plain-French reasons for pydantic's error types (the API answers people, in French).
_REASONS = {
    "missing": "champ obligatoire absent",
    "extra_forbidden": "champ inconnu",
    "string_type": "un texte est attendu",
    "string_too_short": "texte trop court (au moins {min_length} caractère(s))",
    "string_too_long": "texte trop long (au plus {max_length} caractères)",
    "string_pattern_mismatch": "format invalide",
    "bool_type": "vrai ou faux (true/false) est attendu",
    "bool_parsing": "vrai ou faux (true/false) est attendu",
    "dict_type": "un objet est attendu",
    "model_type": "un objet est attendu",
    "model_attributes_type": "un objet est attendu",
    "list_type": "une liste est attendue",
    "too_short": "liste trop courte (au moins {min_length} élément(s))",
    "too_long": "liste trop longue (au plus {max_length} éléments)",
    "int_type": "un nombre entier est attendu",
    "int_parsing": "un nombre entier est attendu",
    "int_parsing_size": "nombre trop grand",
    "int_from_float": "un nombre entier est attendu",
    "float_type": "un nombre est attendu",
    "float_parsing": "un nombre est attendu",
    "finite_number": "nombre non fini (NaN ou infini) refusé",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "greater_than": "doit être supérieur à {gt}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "less_than": "doit être inférieur à {lt}",
    "date_type": "une date AAAA-MM-JJ est attendue",
    "date_parsing": "date illisible (attendu AAAA-MM-JJ)",
    "date_from_datetime_parsing": "date illisible (attendu AAAA-MM-JJ)",
    "date_from_datetime_inexact": "une date sans heure est attendue",
    "datetime_type": "une date et heure ISO 8601 est attendue",
    "datetime_parsing": "date et heure illisibles (attendu AAAA-MM-JJTHH:MM:SS)",
    "datetime_from_date_parsing": "date ou date et heure illisible (attendu AAAA-MM-JJ ou AAAA-MM-JJTHH:MM:SS)",
    "json_invalid": "JSON illisible",
    "json_type": "JSON attendu",
    "literal_error": "valeur non admise",
    "enum": "valeur non admise",
    "union_tag_invalid": "valeur non admise",
}


def french_reason(err: dict[str, Any]) -> str:
    """A short French sentence for one pydantic error (value errors keep their own, already French)."""
    ctx = err.get("ctx") or {}
    if err.get("type") == "value_error" and ctx.get("error"):
        return str(ctx["error"]).removeprefix("Value error, ")
    template = _REASONS.get(str(err.get("type")))
    if template is None:
        return "valeur invalide"
    try:
        return template.format(**ctx)
    except (KeyError, IndexError, ValueError):
        return template.split(" (")[0]


def is_utf8(text: str) -> bool:
    """False for text holding a lone UTF-16 surrogate ("\\ud800" in JSON): no store, nor the schema, takes it."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_SURROGATE = "caractère invalide (moitié de paire UTF-16 isolée, \\ud800-\\udfff) interdit"


def _unsafe_value(value: Any, path: list[str], depth: int = 0) -> tuple[str, str] | None:
    """(field, reason) for the first value no store can keep: a NUL character (PostgreSQL refuses it in
    text), a lone surrogate (not UTF-8), a number that is not finite (NaN, Infinity: not JSON), or a nesting
    deeper than allowed."""
    where = ".".join(path) or "item"
    if depth > MAX_ITEM_DEPTH:
        return where, f"données trop imbriquées (au plus {MAX_PAYLOAD_DEPTH} niveaux dans payload)"
    if isinstance(value, str):
        if "\x00" in value:
            return where, "caractère nul (\\u0000) interdit"
        return None if is_utf8(value) else (where, _SURROGATE)
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, "nombre non fini (NaN ou infini) refusé")
    if isinstance(value, dict):
        for key, inner in value.items():
            if "\x00" in str(key):
                return where, "caractère nul (\\u0000) interdit dans un nom de champ"
            if not is_utf8(str(key)):
                return where, _SURROGATE + " dans un nom de champ"
            found = _unsafe_value(inner, [*path, str(key)], depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found = _unsafe_value(inner, [*path, str(i)], depth + 1)
            if found:
                return found
    return None


def _plainly_safe(raw: Any) -> bool:
    """True when no value of `raw` needs `_unsafe_value`'s report (no NUL, every float finite, shallow enough):
    the walk of every item, without building paths."""
    stack = [(raw, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_ITEM_DEPTH:
            return False
        kind = type(value)
        if kind is str:
            if "\x00" in value or not is_utf8(value):
                return False
        elif kind is dict:
            for key, inner in value.items():
                if type(key) is not str or "\x00" in key or not is_utf8(key):
                    return False
                stack.append((inner, depth + 1))
        elif kind is list:
            stack.extend((inner, depth + 1) for inner in value)
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind not in (int, bool, type(None)):
            return False  # anything else: the full walk decides
    return True


def validate_item(raw: Any, source: str, contact_source: str, line: int | None = None,
                  dropped: Dropped | None = None, *, today: dt.date) -> EventIn | Reject:
    """Turn one raw item into an EventIn, or a Reject naming the first bad field (never raises); `today` (the
    local date) refuses an event dated after tomorrow.

    The payload keeps only the fields declared for the event's type (`triggers.payload_schema`); the others
    are dropped, never refused, and counted in `dropped`."""
    fast = _fast_item(raw, source, contact_source, today)
    if fast is None:
        return _full_item(raw, source, contact_source, line, dropped, today=today)
    event, dropped_fields = fast
    if dropped is not None:
        dropped.fields += dropped_fields
    return event


def _full_item(raw: Any, source: str, contact_source: str, line: int | None = None,
               dropped: Dropped | None = None, *, today: dt.date) -> EventIn | Reject:
    """`validate_item` through the schema (`EventItem`): every item the fast path does not take, and every
    refusal with its field and reason."""
    unsafe = None if _plainly_safe(raw) else _unsafe_value(raw, [])
    if unsafe:
        return Reject(line=line, field=unsafe[0], reason=unsafe[1], raw=_excerpt(raw))
    try:
        item = EventItem.model_validate(raw, context={"today": today})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "item"
        return Reject(line=line, field=field, reason=french_reason(err), raw=_excerpt(raw))
    event = to_event(item, source, contact_source)
    if dropped is not None and item.payload:
        dropped.fields += minimise(item.type, item.payload)[1]
    return event


# The fast path of a whole item: the plain valid shape (JSON strings, known keys, values within their limits),
# turned into its event without building the pydantic models, with the same result as `_full_item`
# (tests/unit/test_partner_fast_path.py compares both on generated items). Anything else, and every refusal,
# goes through the schema for its field and reason.
_ITEM_KEYS = frozenset(EventItem.model_fields)
_BUSINESS_KEYS = frozenset(BusinessIn.model_fields)
_CONTACT_KEYS = frozenset(ContactIn.model_fields)
_COMMUNE = re.compile(r"[0-9][0-9AB][0-9]{3}")
_NON_ADOPTION = frozenset(EVENT_TYPES) - frozenset(ADOPTION_TYPES)
_ONE_DAY = dt.timedelta(days=1)


def _day(text: str) -> dt.date | None:
    """A date text parsed; None when the schema must say why (or decide on a text too long to be a date)."""
    return _short_day(text) if len(text) <= 16 else None


@lru_cache(maxsize=4096)
def _short_day(text: str) -> dt.date | None:
    # Cached: a batch repeats the same few dates, its events' and their businesses' creation.
    try:
        return parse_date(text)
    except ValueError:
        return None


def _fast_item(raw: Any, source: str, contact_source: str, today: dt.date) -> tuple[EventIn, int] | None:
    """(the event, the payload fields dropped) of a plainly valid item; None when the schema must decide.

    Each field's type and length first, then the characters of all its texts at once (no NUL, no lone
    surrogate: a text joined from others has one exactly when one of them has), then what parses them."""
    if type(raw) is not dict or not _ITEM_KEYS.issuperset(raw):
        return None
    get = raw.get
    external_id, kind, siret, occurred_on = get("external_id"), get("type"), get("siret"), get("occurred_on")
    if type(external_id) is not str or not 1 <= len(external_id) <= 120 or type(kind) is not str \
            or kind not in _NON_ADOPTION or type(siret) is not str or type(occurred_on) is not str \
            or get("category") not in (None, ""):
        return None
    business, contact, payload = get("business"), get("contact"), get("payload")
    name = naf = commune = tranche = created = email = phone = street = postal_code = city = None
    consent = False
    if business is not None:
        if type(business) is not dict or not _BUSINESS_KEYS.issuperset(business):
            return None
        bget = business.get
        name, naf, commune, tranche = bget("name"), bget("naf_code"), bget("commune_code"), bget("tranche_effectifs")
        created = bget("creation_date")
        # Each None, or a str within its limit.
        if not ((name is None or type(name) is str and len(name) <= 200)
                and (naf is None or type(naf) is str and len(naf) <= 8)
                and (commune is None or type(commune) is str and len(commune) <= 5)
                and (tranche is None or type(tranche) is str and len(tranche) <= 2)
                and (created is None or type(created) is str)):
            return None
    if contact is not None:
        if type(contact) is not dict or not _CONTACT_KEYS.issuperset(contact):
            return None
        cget = contact.get
        email, phone, consent = cget("email"), cget("phone"), cget("consent", False)
        street, postal_code, city = cget("street"), cget("postal_code"), cget("city")
        if not ((email is None or type(email) is str) and (phone is None or type(phone) is str)
                and type(consent) is bool and (street is None or type(street) is str and len(street) <= 200)
                and (postal_code is None or type(postal_code) is str and len(postal_code) <= 10)
                and (city is None or type(city) is str and len(city) <= 100)):
            return None
    texts = "".join([external_id, siret, occurred_on, name or "", naf or "", commune or "", tranche or "",
                     created or "", email or "", phone or "", street or "", postal_code or "", city or ""])
    if "\x00" in texts or not is_utf8(texts):
        return None
    occurred = _day(occurred_on)
    if occurred is None or occurred > today + _ONE_DAY:
        return None
    # 14 ASCII digits passing both keys: valid as they are (`check_siret` decides the rest).
    if not (len(siret) == 14 and siret.isascii() and siret.isdigit() and luhn_ok(siret[:9]) and luhn_ok(siret)):
        try:
            siret = check_siret(siret)
        except ValueError:
            return None
    if payload is not None and (type(payload) is not dict or not _plainly_safe(raw) or len(
            json.dumps(payload, ensure_ascii=False, allow_nan=False).encode()) > MAX_PAYLOAD_BYTES):
        return None
    facts = None
    if business is not None or contact is not None:
        if naf:
            entry = naf_entry(naf)
            if entry is None:  # the schema says why
                return None
            naf = entry.code
        else:
            naf = None
        if commune is not None and not _COMMUNE.fullmatch(commune):
            return None
        if created is not None and created != "":
            created = _day(created)
            if created is None:
                return None
        else:
            created = occurred if kind == "creation" else None
        contacts = []
        # E-mail and phone: empty means absent; any refusal is the schema's to explain.
        # The plain shapes first, without the checks' wrapping; the checks themselves for the others.
        if email:
            try:
                contacts.append(ContactPoint("email", _fast_email(email) or check_email(email), contact_source,
                                             consent))
            except ValueError:
                return None
        if phone:
            try:
                contacts.append(ContactPoint("phone", _fast_phone(phone.strip()) or check_phone(phone),
                                             contact_source, consent))
            except ValueError:
                return None
        facts = BusinessFacts(siret=siret, name=name, naf_code=naf, commune_code=commune, tranche_effectifs=tranche,
                              creation_date=created, street=street, postal_code=postal_code, city=city,
                              contacts=contacts)
    kept, dropped = minimise(kind, payload) if payload else ({}, 0)
    return EventIn(source=source, external_id=external_id, type=kind, occurred_on=occurred, siret=siret,
                   siren=siret[:9], business=facts, payload=kept), dropped


def _excerpt(raw: Any) -> str:
    """The start of an item, for reject reports; NUL characters shown escaped."""
    return str(raw)[:500].replace("\x00", "\\x00")


def to_event(item: EventItem, source: str, contact_source: str) -> EventIn:
    """The normalised event of a valid item."""
    facts = None
    if item.business or item.contact:
        b = item.business or BusinessIn()
        facts = BusinessFacts(
            siret=item.siret,
            name=b.name,
            naf_code=b.naf_code,
            commune_code=b.commune_code,
            tranche_effectifs=b.tranche_effectifs,
            creation_date=b.creation_date or (item.occurred_on if item.type == "creation" else None),
        )
        c = item.contact
        if c:
            if c.email:
                facts.contacts.append(ContactPoint("email", c.email, contact_source, c.consent))
            if c.phone:
                facts.contacts.append(ContactPoint("phone", c.phone, contact_source, c.consent))
            facts.street, facts.postal_code, facts.city = c.street, c.postal_code, c.city
    return EventIn(
        source=source,
        external_id=item.external_id,
        type=item.type,
        occurred_on=item.occurred_on,
        siret=item.siret,
        siren=item.siret[:9],
        business=facts,
        payload=_declared_payload(item),
    )


def _declared_payload(item: EventItem) -> dict[str, Any]:
    """The item's payload with its declared fields only (minimisation), and the adoption's category."""
    kept = minimise(item.type, item.payload)[0] if item.payload else {}
    return {**kept, "category": item.category} if item.category else kept
