"""The segment compiler against real SQL, on SQLite and PostgreSQL: each field, combinations, exclusion."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from segments.language import parse_segment
from store.models import Business, Interaction, TriggerEvent
from store.planning import segment_counts
from store.segment_sql import compile_segment

TODAY = dt.date(2026, 12, 1)
B = Business.__table__

# key: (family, naf, commune, epci, dep, region, tranche, stage, created, email, phone, street, maturity)
PEOPLE = {
    "plombier_rennes": ("batiment", "43.22A", "35238", "243500139", "35", "53", "00", "creation",
                        TODAY - dt.timedelta(days=40), "p@x.fr", None, None, None),
    "boulanger_paris": ("alimentation", "10.71C", "75111", "200054781", "75", "11", "01", "consolidation",
                        TODAY - dt.timedelta(days=3 * 365), None, "+33612345678", None, 1),
    "resto_brest": ("hotellerie_restauration", "56.10A", "29019", "242900314", "29", "53", "11", "first_hires",
                    TODAY - dt.timedelta(days=700), "r@x.fr", "+33698765432", "1 rue", 4),
    "macon_aude": ("batiment", "43.99C", "11069", "241100593", "11", "76", None, None, None, None, None,
                   "2 rue", None),
    "sans_famille": (None, None, "35238", "243500139", "35", "53", "NN", None, TODAY - dt.timedelta(days=10),
                     "n@x.fr", None, None, 3),
}


@pytest.fixture
def population(engine):
    ids = {}
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        for i, (key, v) in enumerate(PEOPLE.items()):
            (family, naf, commune, epci, dep, region, tranche, stage, created, email, phone, street, maturity) = v
            ids[key] = conn.execute(B.insert().values(
                siret=f"{i:014d}", siren=f"{i:09d}", name=key, naf_code=naf, metier_family=family,
                commune_code=commune, epci_code=epci, departement_code=dep, region_code=region,
                tranche_effectifs=tranche, lifecycle_stage=stage, creation_date=created, email=email, phone=phone,
                street=street, postal_code="35000" if street else None, city="Rennes" if street else None,
                digital_maturity=maturity, state="active", do_not_contact=False, phone_consent=False,
                created_at=now, updated_at=now)).inserted_primary_key[0]
        conn.execute(TriggerEvent.__table__.insert(), [
            {"source": "test", "external_id": "e1", "type": "creation", "business_id": ids["plombier_rennes"],
             "occurred_on": TODAY - dt.timedelta(days=40), "received_at": now, "status": "accepted",
             "planned": True, "payload": {}},
            {"source": "test", "external_id": "e2", "type": "first_hire", "business_id": ids["resto_brest"],
             "occurred_on": TODAY - dt.timedelta(days=400), "received_at": now, "status": "accepted",
             "planned": True, "payload": {}},
        ])
        conn.execute(Interaction.__table__.insert(), [
            {"business_id": ids["boulanger_paris"], "kind": "offer_enrolled", "at": now, "data": {}},
            {"business_id": ids["resto_brest"], "kind": "click", "at": now, "data": {}},
        ])
    return ids


def selected(engine, population, data, territory=None) -> set[str]:
    seg = parse_segment(data)
    names = {v: k for k, v in population.items()}
    with engine.connect() as conn:
        rows = conn.execute(select(B.c.id).where(compile_segment(seg, today=TODAY, territory=territory)))
        return {names[r[0]] for r in rows}


CASES = [
    ({}, set(PEOPLE)),
    ({"families": ["batiment"]}, {"plombier_rennes", "macon_aude"}),
    ({"naf": ["43"]}, {"plombier_rennes", "macon_aude"}),
    ({"naf": ["43.22", "56"]}, {"plombier_rennes", "resto_brest"}),
    ({"territory": {"communes": ["75056"]}}, {"boulanger_paris"}),  # Paris matches its arrondissement 75111
    ({"territory": {"epci": ["243500139"]}}, {"plombier_rennes", "sans_famille"}),
    ({"territory": {"departements": ["11"]}}, {"macon_aude"}),  # the Aude, not the Île-de-France région
    ({"territory": {"regions": ["11"]}}, {"boulanger_paris"}),
    ({"territory": {"regions": ["53"], "departements": ["11"]}},
     {"plombier_rennes", "resto_brest", "sans_famille", "macon_aude"}),
    ({"headcount": ["0"]}, {"plombier_rennes", "sans_famille"}),
    ({"headcount": ["1-2", "unknown"]}, {"boulanger_paris", "macon_aude"}),
    ({"headcount": ["11"]}, {"resto_brest"}),
    ({"stages": ["creation", "first_hires"]}, {"plombier_rennes", "resto_brest"}),
    ({"triggers": {"types": ["creation", "first_hire"]}}, {"plombier_rennes", "resto_brest"}),
    ({"triggers": {"types": ["first_hire"], "within": "90d"}}, set()),
    ({"age": {"max": "6m"}}, {"plombier_rennes", "sans_famille"}),
    ({"age": {"min": "1y"}}, {"boulanger_paris", "resto_brest"}),
    ({"reachable": ["email"]}, {"plombier_rennes", "resto_brest", "sans_famille"}),
    ({"reachable": ["phone", "postal"]}, {"boulanger_paris", "resto_brest", "macon_aude"}),
    ({"converted": True}, {"boulanger_paris"}),
    ({"converted": False}, set(PEOPLE) - {"boulanger_paris"}),
    ({"digital_maturity": {"max": 2}}, {"boulanger_paris"}),
    ({"digital_maturity": {"max": 3, "unknown": True}}, {"boulanger_paris", "sans_famille", "plombier_rennes",
                                                         "macon_aude"}),
    ({"exclude": {"families": ["batiment"]}}, {"boulanger_paris", "resto_brest", "sans_famille"}),
    ({"families": ["batiment"], "reachable": ["email"], "converted": False}, {"plombier_rennes"}),
]


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_each_field_selects_in_sql(engine, population, data, expected):
    assert selected(engine, population, data) == expected


def test_fields_combine_as_intersection(engine, population):
    # Any two single-field cases together select exactly the intersection of their results.
    singles = [(d, e) for d, e in CASES if len(d) == 1 and "exclude" not in d]
    for (d1, e1), (d2, e2) in itertools.combinations(singles, 2):
        if set(d1) & set(d2):
            continue
        assert selected(engine, population, {**d1, **d2}) == e1 & e2, (d1, d2)


def test_effective_territory_replaces_the_segment_one(engine, population):
    from segments.language import TerritoryFilter

    got = selected(engine, population, {"families": ["batiment"]}, TerritoryFilter(departements=["35"]))
    assert got == {"plombier_rennes"}


def test_preview_counts_by_family_and_departement(engine, population):
    with engine.connect() as conn:
        rows = segment_counts(conn, parse_segment({"reachable": ["email", "phone"]}), today=TODAY)
    assert {(f, d): n for f, d, n in rows} == {
        ("batiment", "35"): 1, ("alimentation", "75"): 1, ("hotellerie_restauration", "29"): 1, (None, "35"): 1}
