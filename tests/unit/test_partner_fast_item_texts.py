"""The item fast path checks the characters of all an item's texts at once (no NUL, no lone surrogate): a text
that only one field holds, wherever it is, and the halves of a surrogate pair split over two fields, leave the
item to the schema, which refuses it naming that field, as the full path does; dates are parsed once per text
(cached) and a text too long to be a date is left to the schema."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggers.model import Reject
from triggers.partner_api import _fast_item, _full_item, validate_item
from triggers.payload_schema import Dropped

TODAY = dt.date(2026, 12, 6)
ITEM = {"external_id": "bge-1", "type": "creation", "siret": "73282932000074", "occurred_on": "2026-12-02",
        "business": {"name": "Boulangerie Martin", "naf_code": "10.71C", "commune_code": "35238",
                     "tranche_effectifs": "01", "creation_date": "2026-11-30"},
        "contact": {"email": "contact@exemple.fr", "phone": "06 12 34 56 78", "street": "7, rue de la Paix",
                    "postal_code": "35000", "city": "Rennes", "consent": True}}
FIELDS = [(None, "external_id"), (None, "siret"), (None, "occurred_on"), ("business", "name"),
          ("business", "naf_code"), ("business", "commune_code"), ("business", "tranche_effectifs"),
          ("business", "creation_date"), ("contact", "email"), ("contact", "phone"), ("contact", "street"),
          ("contact", "postal_code"), ("contact", "city")]


def with_value(where: str | None, name: str, value) -> dict:
    item = {**ITEM, "business": dict(ITEM["business"]), "contact": dict(ITEM["contact"])}
    (item[where] if where else item)[name] = value
    return item


def both(raw):
    dropped = Dropped()
    return _full_item(raw, "partner:1", "bge", 3, dropped, today=TODAY), _fast_item(raw, "partner:1", "bge", TODAY)


def test_the_plain_item_takes_the_fast_path():
    full, fast = both(ITEM)
    assert fast == (full, 0) and not isinstance(full, Reject)


@pytest.mark.parametrize(("where", "name"), FIELDS)
@pytest.mark.parametrize("bad", ["a\x00b", "x\ud800", "\udfff", "\x00"])
def test_a_bad_character_in_any_one_field_is_the_schemas_to_refuse(where, name, bad):
    raw = with_value(where, name, ITEM[where][name][:3] + bad if where else ITEM[name][:3] + bad)
    full, fast = both(raw)
    assert fast is None
    assert isinstance(full, Reject) and full.field == (f"{where}.{name}" if where else name)
    assert validate_item(raw, "partner:1", "bge", 3, today=TODAY) == full


def test_the_halves_of_a_surrogate_pair_in_two_fields_are_refused():
    raw = with_value("business", "name", "Boulangerie \ud83d")
    raw["business"]["naf_code"] = "\ude0010.71C"
    full, fast = both(raw)
    assert fast is None and isinstance(full, Reject) and full.field == "business.name"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), st.text(alphabet=st.sampled_from("a1-/ é\x00\ud800\udc00"), max_size=24))
def test_any_text_in_any_field_gets_the_schemas_verdict(field, value):
    raw = with_value(*field, value)
    full, fast = both(raw)
    if fast is not None:
        assert fast == (full, 0)
    assert validate_item(raw, "partner:1", "bge", 3, today=TODAY) == full


def test_dates_long_or_repeated_get_the_schemas_verdict():
    for value in ("2026-12-02" + " " * 20, " 2026-12-01 ", "2026-12-02", "02/12/2026", "2026-12-02T10:00"):
        for field in ((None, "occurred_on"), ("business", "creation_date")):
            raw = with_value(*field, value)
            full, fast = both(raw)
            assert validate_item(raw, "partner:1", "bge", 3, today=TODAY) == full
            if fast is not None:
                assert fast == (full, 0)
    assert both(with_value(None, "occurred_on", "2026-12-02" + " " * 20))[1] is None  # too long for the fast path
