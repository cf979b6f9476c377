"""The partner intake's fast paths for e-mails, French phone numbers, SIRETs and whole items give the same verdicts
as the full validators (email-validator, phonenumbers, python-stdnum, the pydantic schema) on generated inputs,
valid and invalid shapes alike."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.core.phones import InvalidNumber, normalise_french_number
from triggers.model import Reject
from triggers.partner_api import (
    _fast_email,
    _fast_item,
    _fast_phone,
    _full_item,
    _plainly_safe,
    _unsafe_value,
    check_email,
    check_phone,
    check_siret,
    validate_item,
)
from triggers.payload_schema import Dropped

PROPERTY = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_email(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def full_phone(value: str) -> str | None:
    try:
        return normalise_french_number(value)
    except InvalidNumber:
        return None


def verdict(check, value):
    try:
        return check(value)
    except ValueError as exc:
        return ("refused", str(exc))


# --- e-mails: plain shapes, near misses, and anything at all ---

LOCAL_CHARS = "abcXYZ019_+-.!#$%&'*/=?^`{|}~\"(),:;<>@[\\] é"
DOMAIN_CHARS = "abcXYZ019-._ é"
TLDS = ["fr", "com", "FR", "org", "bzh", "paris", "test", "local", "localhost", "invalid", "onion", "arpa", "1",
        "f", "x1", "a" * 64, "example", "museum", "xn--p1ai", "c0m", ""]

local_parts = st.one_of(st.from_regex(r"[a-z0-9_+-]{1,20}(\.[a-zA-Z0-9_+-]{1,10}){0,2}", fullmatch=True),
                        st.text(LOCAL_CHARS, min_size=0, max_size=70))
labels = st.one_of(st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True),
                   st.text(DOMAIN_CHARS, min_size=0, max_size=12), st.just("a" * 63), st.just("a" * 64),
                   st.just("ab--cd"), st.just("xn--80ak6aa92e"))
domains = st.builds(lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=0, max_size=4),
                    st.sampled_from(TLDS))
addresses = st.one_of(st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains),
                      st.builds(lambda local, domain: f"{local}@@{domain}", local_parts, domains),
                      st.text(max_size=40))


@PROPERTY
@given(addresses)
@example("jean.dupont@exemple.fr")
@example("Jean.Dupont@Exemple.FR")
@example("a@b.c")
@example(".a@exemple.fr")
@example("a.@exemple.fr")
@example("a..b@exemple.fr")
@example("a@-exemple.fr")
@example("a@exemple-.fr")
@example("a@exemple.test")
@example("a@sub.localhost")
@example("a@exemple.123")
@example("x" * 65 + "@exemple.fr")
@example("a@" + ".".join(["b" * 63] * 4) + ".fr")
def test_the_email_fast_path_agrees_with_email_validator(address):
    fast = _fast_email(address)
    if fast is not None:  # whatever the fast path accepts, email-validator accepts the same way
        assert fast == full_email(address)
    assert verdict(check_email, address)[0] != "refused" or full_email(address) is None
    if full_email(address) is not None:
        assert check_email(address) == full_email(address)


def test_the_email_fast_path_takes_the_common_shapes():
    for address in ("jean.dupont@exemple.fr", "contact+bge@boulangerie-martin.bzh", "J_Doe-1@Mail.Orange.FR"):
        assert _fast_email(address) == full_email(address) is not None


# --- phone numbers: French shapes, overseas, foreign, broken ---

digits = st.text("0123456789", min_size=0, max_size=12)
separators = st.sampled_from(["", " ", ".", "-", "  ", "/", "(0)", "\u00a0"])


def _grouped(number: str, sep: str) -> str:
    return sep.join(number[i:i + 2] for i in range(0, len(number), 2))


french_shapes = st.builds(lambda prefix, body, sep: prefix + _grouped(body, sep),
                          st.sampled_from(["0", "+33", "+33 ", "+33-", "0033", "+262 ", "+44 ", "", "+", "00"]),
                          st.text("0123456789", min_size=8, max_size=11), separators)
phones = st.one_of(french_shapes, digits, st.text("0123456789 .-+()", max_size=20), st.text(max_size=16))


@PROPERTY
@given(phones)
@example("06 12 34 56 78")
@example("+33 6 12 34 56 78")
@example("0262 12 34 56")  # La Réunion: overseas, the full path decides
@example("0692 12 34 56")
@example("01 23 45 67 89")
@example("08 99 12 34 56")
@example("09 12 34 56 78")
@example("05 00 00 00 00")
@example("+33612345678")
@example(" 0612345678 ")
@example("0612345678\u00a0")
@example("+44 20 7946 0958")
def test_the_phone_fast_path_agrees_with_phonenumbers(raw):
    fast = _fast_phone(raw.strip())
    if fast is not None:
        assert fast == full_phone(raw)
    full = full_phone(raw)
    got = verdict(check_phone, raw)
    assert got == full if full is not None else got[0] == "refused"


def test_the_phone_fast_path_takes_the_common_shapes():
    for raw in ("06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78", "01-23-45-67-89"):
        assert _fast_phone(raw) == full_phone(raw) is not None
    assert _fast_phone("0262 12 34 56") is None and full_phone("0262 12 34 56") == "+262262123456"


# --- SIRET: 14 digits go straight to the key check ---


@PROPERTY
@given(st.one_of(st.text("0123456789", min_size=13, max_size=15), st.text("0123456789 .", max_size=18),
                 st.text(max_size=16)))
@example("73282932000074")
@example("732 829 320 00074")
@example("٧٣٢٨٢٩٣٢٠٠٠٠٧٤")  # Arabic-Indic digits: not ASCII, the full path decides
def test_the_siret_fast_path_agrees_with_stdnum(raw):
    from stdnum.fr import siret as siret_check

    from triggers.sirene import siret_is_valid

    compact = siret_check.compact(raw)
    expected = compact if len(compact) == 14 and compact.isdigit() and siret_is_valid(compact) else None
    got = verdict(check_siret, raw)
    assert got == expected if expected is not None else got[0] == "refused"


# --- the walk for unsafe values (NUL characters, NaN, nesting) ---

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
              st.text(alphabet=st.sampled_from("ab\x00é \ud800"), max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(alphabet=st.sampled_from("k\x00\udc00"), max_size=2), inner,
                                            max_size=3)),
    max_leaves=40,
)


@PROPERTY
@given(json_values)
@example([[[[[[[[[[["deep"]]]]]]]]]]])
@example({"payload": {"a": float("nan")}})
@example({"k\x00": 1})
def test_the_quick_walk_finds_what_the_full_walk_reports(value):
    assert _plainly_safe(value) == (_unsafe_value(value, []) is None)


# --- whole items: the fast path builds the same event as the schema, or leaves the item to it ---

TODAY = dt.date(2026, 12, 6)
BAD_TEXT = ["", "a\x00b", "x\ud800", "é", " ", "a" * 121, "a" * 201]


def maybe(valid, *invalid):
    # A valid value most of the time, sometimes one of the wrong ones (types, lengths, NUL, lone surrogates).
    return st.one_of(valid, valid, valid, st.sampled_from([*invalid, None, 1, 1.5, True, [], {}, *BAD_TEXT]))


sirets = maybe(st.sampled_from(["73282932000074", "24177763007067", "732 829 320 00074", "73282932000075"]))
dates = maybe(st.sampled_from(["2026-12-02", "02/12/2026", "2026-12-07", "2026-12-08", " 2026-12-01 ", "2026-02-30",
                               "2026-12-02T10:00", "20261202"]))
business = st.fixed_dictionaries({}, optional={
    "name": maybe(st.sampled_from(["Boulangerie Martin", "Lucas Hélène", "", None])),
    "naf_code": maybe(st.sampled_from(["45.20A", "4520A", "10.71C", "99.99Z", "", "45.20a", "452"])),
    "commune_code": maybe(st.sampled_from(["35238", "2A004", "35238\n", "3523", "352381", "", "75056"])),
    "tranche_effectifs": maybe(st.sampled_from(["00", "01", "NN", "123"])),
    "creation_date": dates,
    "siege": st.just(True),
})
contact = st.fixed_dictionaries({}, optional={
    "email": maybe(st.sampled_from(["contact@exemple.fr", "Jean.Dupont@Exemple.FR", "a@exemple.test", "pas une adresse",
                                    "élodie@exemple.fr", ""])),
    "phone": maybe(st.sampled_from(["06 12 34 56 78", "+33612345678", "0262 12 34 56", "+44 20 7946 0958", "12", ""])),
    "street": maybe(st.sampled_from(["7, rue de la Paix", "x" * 200])),
    "postal_code": maybe(st.sampled_from(["35000", "x" * 11])),
    "city": maybe(st.sampled_from(["Rennes", "x" * 101])),
    "consent": st.sampled_from([True, False, "true", 1, None]),
    "fax": st.just("01"),
})
payloads = st.one_of(st.none(), json_values, st.dictionaries(st.sampled_from(["program", "note", "zz", "funding_type"]),
                                                           json_values, max_size=3),
                     st.just({"note": "x" * 17_000}), st.just({"program": "a\ud800"}))
items = st.fixed_dictionaries(
    {"external_id": maybe(st.sampled_from(["bge-1", "x" * 120, "é-2"])),
     "type": maybe(st.sampled_from(["creation", "first_hire", "closure", "tool_adopted", "offer_enrolled", "vente"])),
     "siret": sirets, "occurred_on": dates},
    optional={"business": st.one_of(st.none(), business, st.just([])), "contact": st.one_of(st.none(), contact),
              "payload": payloads, "category": st.sampled_from([None, "", "payment", "gestion", 3]),
              "extra": st.just(1)})


def _both(raw):
    full_dropped = Dropped()
    full = _full_item(raw, "partner:1", "bge", 3, full_dropped, today=TODAY)
    fast = _fast_item(raw, "partner:1", "bge", TODAY)
    return full, full_dropped.fields, fast


@PROPERTY
@given(st.one_of(items, json_values))
def test_the_item_fast_path_agrees_with_the_schema(raw):
    full, dropped, fast = _both(raw)
    if fast is not None:  # whatever the fast path takes, the schema takes the same way
        assert fast == (full, dropped)
    # validate_item answers as the schema does, refusals included (field and reason)
    assert validate_item(raw, "partner:1", "bge", 3, today=TODAY) == full


def test_the_item_fast_path_takes_the_common_shapes():
    raw = {"external_id": "bge-1", "type": "creation", "siret": "73282932000074", "occurred_on": "2026-12-02",
           "business": {"name": "Boulangerie Martin", "naf_code": "10.71C", "commune_code": "35238",
                        "creation_date": "2026-11-30"},
           "contact": {"email": "Jean.Dupont@Exemple.FR", "phone": "06 12 34 56 78", "street": "7, rue de la Paix",
                       "postal_code": "35000", "city": "Rennes", "consent": True},
           "payload": {"program": "BGE", "zz": 1}}
    full, dropped, fast = _both(raw)
    assert fast == (full, dropped) and dropped == 1 and not isinstance(full, Reject)
    assert full.business.contacts[0].value == "Jean.Dupont@exemple.fr"
    for bad in ({**raw, "siret": "73282932000075"}, {**raw, "occurred_on": "2026-12-08"}, {**raw, "extra": 1}):
        assert _fast_item(bad, "partner:1", "bge", TODAY) is None and isinstance(_both(bad)[0], Reject)


def test_a_lone_surrogate_is_refused_with_its_field_not_a_crash():
    raw = {"external_id": "bge-1", "type": "creation", "siret": "73282932000074", "occurred_on": "2026-12-02",
           "business": {"name": "Boulangerie \ud800"}}
    got = validate_item(raw, "partner:1", "bge", 3, today=TODAY)
    assert isinstance(got, Reject) and got.field == "business.name" and "UTF-16" in got.reason
    got = validate_item({**raw, "business": None, "type": "x\udc00"}, "partner:1", "bge", today=TODAY)
    assert isinstance(got, Reject) and got.field == "type"
