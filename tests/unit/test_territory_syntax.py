"""One territory syntax for every command, form and spec: codes checked, old plurals accepted, names resolved."""

from __future__ import annotations

import pytest

from segments.territory import (
    TerritoryError,
    parse_place,
    parse_places,
    parse_territory_text,
    places_scope,
    search_places,
    territory_label,
)


@pytest.mark.parametrize("text", ["departement:35", "departements:35", "Département:35", "Ille-et-Vilaine",
                                  "ille et vilaine"])
def test_singular_plural_and_name_mean_the_same(text):
    assert parse_place(text).key == "departement:35"


def test_names_of_every_level():
    assert parse_place("Rennes Métropole").key == "epci:243500139"
    assert parse_place("Bruz").key == "commune:35047"
    assert parse_place("Bretagne").key == "region:53"
    assert parse_place("commune:Rennes").key == "commune:35238"
    assert parse_place("commune:75101").key == "commune:75056"  # an arrondissement is its commune


def test_unknown_codes_are_refused_by_name():
    with pytest.raises(TerritoryError, match="Code de département inconnu : 999"):
        parse_place("departement:999")
    with pytest.raises(TerritoryError, match="inconnu"):
        parse_place("epci:123456789")
    with pytest.raises(TerritoryError, match="Niveau de territoire inconnu"):
        parse_place("canton:35")


def test_an_ambiguous_name_lists_the_candidates():
    with pytest.raises(TerritoryError) as caught:
        parse_place("Saint-Denis")
    assert "commune:93066" in str(caught.value) and "commune:97411" in str(caught.value)


def test_several_places_and_their_forms():
    places = parse_places("Bruz; departement:35, Rennes Métropole")
    assert places_scope(places) == ["commune:35047", "departement:35", "epci:243500139"]
    assert parse_territory_text(["departements:35", "Bruz"]) == {"departements": ["35"], "communes": ["35047"]}
    assert territory_label({"departements": ["35"]}) == "Ille-et-Vilaine (département 35)"


def test_completion_puts_the_widest_places_first():
    found = search_places("rennes m")
    assert found[0].key == "epci:243500139"
    assert search_places("r") == []


def test_the_campaign_spec_reads_the_same_syntax():
    from segments.language import TerritoryFilter

    assert TerritoryFilter.model_validate({"departement": ["35"], "epci": ["Rennes Métropole"]}).model_dump() == {
        "communes": [], "epci": ["243500139"], "departements": ["35"], "regions": []}
    assert TerritoryFilter.model_validate("Bruz").communes == ["35047"]
    assert TerritoryFilter.model_validate({"departements": ["999"]}).unknown_codes() == ["departement:999"]
