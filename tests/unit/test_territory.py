"""Territories from the shipped CSV files: commune -> EPCI -> département -> région."""

import csv
import io
from importlib import resources

import pytest

from segments.territory import (
    CommuneInfo,
    commune,
    communes_of,
    departement_timezone,
    departements,
    epcis,
    regions,
    validate_codes,
)

GRAND_PARIS = "200054781"


def test_paris_arrondissement_resolves_to_paris():
    info = commune("75101")
    assert info == CommuneInfo(code="75056", nom="Paris", epci=GRAND_PARIS, departement="75", region="11")
    assert epcis()[GRAND_PARIS].nom == "Métropole du Grand Paris"
    assert departements()["75"].nom == "Paris"
    assert regions()["11"].nom == "Île-de-France"


def test_lyon_and_marseille_arrondissements_resolve_to_their_commune():
    lyon = commune("69381")
    assert lyon.code == "69123" and lyon.nom == "Lyon"
    assert lyon.departement == "69" and lyon.region == "84"
    assert epcis()[lyon.epci].type == "MET69"
    assert commune("13201").code == "13055"


def test_current_commune_resolves_to_itself():
    assert commune("75056").code == "75056"
    assert commune("2a004").code == "2A004"  # Ajaccio, Corsican code typed in lowercase
    assert commune("2A004").departement == "2A"


def test_former_commune_resolves_to_its_commune_nouvelle():
    # Cordieux (01120) is a commune associée of Montluel (01262).
    assert commune("01120").code == "01262"


def test_unknown_commune_is_none():
    assert commune("00000") is None
    assert commune("") is None


def test_current_commune_count_is_plausible():
    current = set().union(*(communes_of("region", code) for code in regions()))
    assert 34_900 <= len(current) <= 35_000


def test_every_commune_has_a_known_departement_and_region_and_epci():
    deps, regs, known_epci = departements(), regions(), epcis()
    for region in regs:
        for code in communes_of("region", region):
            info = commune(code)
            assert info.departement in deps and info.region == region
            assert deps[info.departement].region == region
            assert info.epci is None or info.epci in known_epci


def test_shipped_communes_file_is_consistent():
    text = resources.files("segments.data").joinpath("communes.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    by_code = {row["code"]: row for row in rows}
    assert len(by_code) == len(rows)  # codes are unique
    deps, regs, known_epci = departements(), regions(), epcis()
    for row in rows:
        assert row["departement"] in deps and row["region"] in regs, row
        assert not row["epci"] or row["epci"] in known_epci, row
        if row["type"] == "commune-actuelle":
            assert row["parent"] == "", row
        else:
            parent = by_code[row["parent"]]
            assert parent["type"] == "commune-actuelle", row
            assert (row["departement"], row["region"], row["epci"]) == (
                parent["departement"],
                parent["region"],
                parent["epci"],
            ), row
    assert sum(row["type"] == "arrondissement-municipal" for row in rows) == 45


def test_communes_of_each_level():
    assert communes_of("commune", "75101") == {"75056"}
    grand_paris = communes_of("epci", GRAND_PARIS)
    assert "75056" in grand_paris and len(grand_paris) > 100
    assert communes_of("departement", "75") == {"75056"}
    assert grand_paris <= communes_of("region", "11")
    assert communes_of("departement", "11") != communes_of("region", "11")  # Aude vs Île-de-France
    assert communes_of("epci", "999999999") == frozenset()


def test_communes_of_with_subdivisions_adds_arrondissements():
    paris = communes_of("departement", "75", with_subdivisions=True)
    assert {"75056", "75101", "75120"} <= paris
    assert len(paris) == 21


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level"):
        communes_of("pays", "FR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        validate_codes("canton", ["01"])  # type: ignore[arg-type]


def test_validate_codes_returns_the_unknown_ones_in_order():
    assert validate_codes("commune", ["75056", "75101", "00000", "99999", "00000"]) == ["00000", "99999"]
    assert validate_codes("epci", [GRAND_PARIS, "123"]) == ["123"]
    assert validate_codes("departement", ["2A", "971", "20"]) == ["20"]
    assert validate_codes("region", ["11", "75", "2A"]) == ["2A"]


def test_timezones():
    assert departement_timezone("75") == "Europe/Paris"
    assert departement_timezone("2B") == "Europe/Paris"
    expected = {
        "971": "America/Guadeloupe",
        "972": "America/Martinique",
        "973": "America/Cayenne",
        "974": "Indian/Reunion",
        "976": "Indian/Mayotte",
    }
    for dep, zone in expected.items():
        assert departement_timezone(dep) == zone
    assert all(departement_timezone(dep) for dep in departements())
    with pytest.raises(ValueError):
        departement_timezone("00")


def test_reference_sizes():
    assert len(departements()) >= 101
    assert len(regions()) >= 18
    assert len(epcis()) > 1_000
