"""A business's table row is built as one tuple (`store.businesses._row_values`, the partner API makes 500 a batch)
and `business_row` is its dict: both give what the row of many dict updates gave (kept here as the reference), on
generated facts: contact points in any order (the first e-mail and the first phone win), known and unknown
communes, NAF codes with and without a family, dates and datetimes."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.taxonomy import family_for_naf
from segments.territory import commune as commune_info
from store.businesses import _ROW_KEYS, _row_values, business_row, merge_row
from store.driver import _sqlite_date
from triggers.model import BusinessFacts, ContactPoint


def reference_row(facts: BusinessFacts) -> dict:
    # The row as it was built before the tuple: a dict of defaults, then the place, the contacts, the address source.
    row = {
        "siret": facts.siret, "siren": facts.siret[:9], "name": facts.name, "naf_code": facts.naf_code,
        "naf25_code": facts.naf25_code,
        "metier_family": family_for_naf(facts.naf_code) if facts.naf_code else None,
        "commune_code": None, "epci_code": None, "departement_code": None, "region_code": None,
        "tranche_effectifs": facts.tranche_effectifs, "employer": facts.employer,
        "creation_date": facts.creation_date, "state": facts.state, "do_not_contact": bool(facts.do_not_contact),
        "email": None, "email_source": None, "phone": None, "phone_source": None, "phone_consent": False,
        "street": facts.street, "postal_code": facts.postal_code, "city": facts.city, "address_source": None,
    }
    if facts.commune_code:
        info = commune_info(facts.commune_code)
        if info:
            row.update(commune_code=info.code, epci_code=info.epci, departement_code=info.departement,
                       region_code=info.region)
    for contact in facts.contacts:
        if contact.kind == "email" and not row["email"]:
            row["email"], row["email_source"] = contact.value, contact.source
        elif contact.kind == "phone" and not row["phone"]:
            row["phone"], row["phone_source"] = contact.value, contact.source
            row["phone_consent"] = contact.consent
    if facts.street and facts.contacts:
        row["address_source"] = facts.contacts[0].source
    return row


texts = st.sampled_from([None, "", "Boulangerie Martin", "7, rue de la Paix"])
contacts = st.lists(st.builds(ContactPoint, st.sampled_from(["email", "phone", "postal"]),
                              st.sampled_from(["", "contact@exemple.fr", "+33612345678", "x"]),
                              st.sampled_from(["bge", "partner:7", "sirene"]), st.booleans()), max_size=4)
facts = st.builds(
    BusinessFacts,
    siret=st.sampled_from(["73282932000074", "35600000000048"]),
    name=texts,
    naf_code=st.sampled_from([None, "", "10.71C", "45.20A", "99.99Z"]),
    naf25_code=st.sampled_from([None, "10.71C"]),
    commune_code=st.sampled_from([None, "", "35238", "75101", "2a004", "99999", " 35047 "]),
    tranche_effectifs=st.sampled_from([None, "00", "NN"]),
    employer=st.sampled_from([None, True, False]),
    creation_date=st.one_of(st.none(), st.dates(), st.datetimes()),
    state=st.sampled_from([None, "active", "closed"]),
    do_not_contact=st.sampled_from([None, True, False]),
    street=texts, postal_code=st.sampled_from([None, "35000"]), city=st.sampled_from([None, "Rennes"]),
    contacts=contacts,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts)
def test_the_row_tuple_and_its_dict_are_the_reference_row(f):
    expected = reference_row(f)
    assert business_row(f) == expected
    assert list(business_row(f)) == list(expected) == list(_ROW_KEYS)  # the same keys in the same order
    # For SQLite the creation date is the text SQLAlchemy writes there and the flags are 0/1 (as SQLAlchemy sends a
    # BOOLEAN there); every other value is the same.
    flags = {"employer", "do_not_contact", "phone_consent"}
    assert _row_values(f, True) == tuple({**expected, "creation_date": _sqlite_date(expected["creation_date"])}
                                         .values())
    assert [type(v) for k, v in zip(_ROW_KEYS, _row_values(f, True), strict=True) if k in flags and v is not None] \
        == [int] * sum(expected[k] is not None for k in flags)


def test_the_first_email_and_the_first_phone_win_and_the_place_follows_the_commune():
    f = BusinessFacts(siret="73282932000074", naf_code="10.71C", commune_code="75101", street="2 rue Haute",
                      creation_date=dt.date(2026, 10, 1),
                      contacts=[ContactPoint("phone", "+33612345678", "bge", True),
                                ContactPoint("email", "", "bge"), ContactPoint("email", "a@exemple.fr", "cma"),
                                ContactPoint("phone", "+33698765432", "cma", False)])
    row = business_row(f)
    assert (row["email"], row["email_source"], row["phone"], row["phone_source"], row["phone_consent"]) == (
        "a@exemple.fr", "cma", "+33612345678", "bge", True)
    assert row["commune_code"] == "75056" and row["departement_code"] == "75" and row["address_source"] == "bge"
    assert _row_values(f, True)[_ROW_KEYS.index("creation_date")] == "2026-10-01"
    # Two rows of one SIRET merge on their dicts as before.
    merged = merge_row(row, business_row(BusinessFacts(siret="73282932000074", name="Atelier", do_not_contact=True)))
    assert merged["name"] == "Atelier" and merged["do_not_contact"] is True and merged["email"] == "a@exemple.fr"
