"""Pure letter rules: the NF Z10-011 address block, French dates, batch ids."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.letter_pdf import (
    MAX_CHARS,
    AddressError,
    address_block,
    batch_id_for,
    block_from_lines,
    french_date,
    postal_upper,
    split_address,
)


def test_a_full_block_has_six_lines_with_the_last_ones_in_postal_upper_case() -> None:
    lines = address_block(
        name="Boulangerie Martin",
        contact="Mme Élodie Martin",
        building="Résidence Les Tilleuls, bât. B",
        street="12, rue de l'Église",
        locality_extra="Lieu-dit Kerbihan",
        postcode="35000",
        city="Rennes",
    )
    assert lines == [
        "Boulangerie Martin",
        "Mme Élodie Martin",
        "Résidence Les Tilleuls, bât. B",
        "12 RUE DE L EGLISE",
        "LIEU DIT KERBIHAN",
        "35000 RENNES",
    ]
    assert len(lines) <= 6 and all(len(line) <= MAX_CHARS for line in lines)


def test_empty_optional_lines_are_left_out() -> None:
    assert address_block(
        name="Fleurs de Lys", street="3 place du Marché", postcode="07200", city="Aubenas"
    ) == [
        "Fleurs de Lys",
        "3 PLACE DU MARCHE",
        "07200 AUBENAS",
    ]


def test_cedex_and_postcode_with_spaces() -> None:
    lines = address_block(
        name="CCI Ille-et-Vilaine",
        street="2 avenue de la Préfecture",
        postcode="35 042",
        city="Rennes",
        cedex="9",
    )
    assert lines[-1] == "35042 RENNES CEDEX 9"


def test_a_long_street_is_abbreviated_the_la_poste_way() -> None:
    lines = address_block(
        name="Garage du Centre",
        street="145 boulevard du Maréchal de Lattre de Tassigny",
        postcode="59000",
        city="Lille",
    )
    assert lines[1] == "145 BD DU MAL DE LATTRE DE TASSIGNY"
    assert len(lines[1]) <= MAX_CHARS


def test_a_long_town_name_is_abbreviated() -> None:
    lines = address_block(
        name="Café", street="1 rue Haute", postcode="35140", city="Saint-Aubin-du-Cormier-et-Sainte-Marie"
    )
    assert lines[-1] == "35140 ST AUBIN DU CORMIER ET STE MARIE"
    assert len(lines[-1]) <= MAX_CHARS


def test_a_long_name_continues_on_line_two_when_free() -> None:
    name = "Société Coopérative Ouvrière de Production des Charpentiers"
    lines = address_block(name=name, street="5 rue du Port", postcode="56100", city="Lorient")
    assert " ".join(lines[:2]) == name
    assert all(len(line) <= MAX_CHARS for line in lines)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "", "postcode": "35000", "city": "Rennes"}, "nom du destinataire absent"),
        ({"name": "A", "postcode": "3500", "city": "Rennes"}, "code postal invalide"),
        ({"name": "A", "postcode": "ABCDE", "city": "Rennes"}, "code postal invalide"),
        ({"name": "A", "postcode": "35000", "city": " "}, "localité absente"),
        (
            {"name": "A" * 39, "contact": "Service achats", "postcode": "35000", "city": "Rennes"},
            "ligne 1 (nom) trop longue",
        ),
        (
            {"name": "A", "street": "12 rue " + "X" * 40, "postcode": "35000", "city": "Rennes"},
            "ligne 4 (numéro et voie) trop longue",
        ),
        (
            {"name": "A", "building": "Bâtiment " + "Y" * 40, "postcode": "35000", "city": "Rennes"},
            "ligne 3",
        ),
    ],
)
def test_addresses_that_cannot_fit_raise_a_clear_french_error(fields: dict[str, str], words: str) -> None:
    with pytest.raises(AddressError) as err:
        address_block(**fields)
    assert words in str(err.value)


def test_block_from_lines_normalises_the_last_lines_and_keeps_the_name() -> None:
    lines = block_from_lines(["Chez Léa – coiffure", "", "  8 rue des Écoles ", "35400 Saint-Malo"])
    assert lines == ["Chez Léa – coiffure", "8 RUE DES ECOLES", "35400 SAINT MALO"]


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (["Seulement un nom"], "incomplète"),
        (["a", "b", "c", "d", "e", "f", "35000 RENNES"], "7 lignes pour 6"),
        (["Nom", "12 rue Haute", "Rennes"], "sans code postal"),
        (["Nom", "1 " + "Z" * 45, "35000 RENNES"], "trop longue"),
    ],
)
def test_block_from_lines_refuses_what_la_poste_cannot_read(lines: list[str], words: str) -> None:
    with pytest.raises(AddressError) as err:
        block_from_lines(lines)
    assert words in str(err.value)


def test_postal_upper_drops_accents_ligatures_and_punctuation() -> None:
    assert postal_upper("Bœuf-sur-Mer, l'Hôpital") == "BOEUF SUR MER L HOPITAL"


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (dt.date(2026, 11, 27), "27 novembre 2026"),
        (dt.date(2026, 12, 1), "1er décembre 2026"),
        (dt.date(2027, 2, 3), "3 février 2027"),
        (dt.date(2027, 8, 15), "15 août 2027"),
    ],
)
def test_french_dates(day: dt.date, text: str) -> None:
    assert french_date(day) == text


def test_batch_id_is_stable_for_the_same_messages() -> None:
    day = dt.date(2026, 11, 27)
    assert batch_id_for(day, [3, 1, 2]) == batch_id_for(day, [1, 2, 3])
    assert batch_id_for(day, [1, 2, 3]) != batch_id_for(day, [1, 2, 4])
    assert batch_id_for(day, [1]).startswith("20261127-")


def test_a_long_name_in_recipient_lines_continues_on_a_second_line() -> None:
    lines = block_from_lines(
        ["SOCIETE COOPERATIVE OUVRIERE DE PRODUCTION DU BATIMENT", "5 rue du Port", "56100 Lorient"]
    )
    assert lines == [
        "SOCIETE COOPERATIVE OUVRIERE DE",
        "PRODUCTION DU BATIMENT",
        "5 RUE DU PORT",
        "56100 LORIENT",
    ]


def test_sender_addresses_are_split_into_lines() -> None:
    assert split_address("1 avenue de la Préfecture, 35042 Rennes") == (
        "1 avenue de la Préfecture",
        "35042 Rennes",
    )
    assert split_address("Hôtel de Ville | Place de la Mairie\n35000 Rennes") == (
        "Hôtel de Ville",
        "Place de la Mairie",
        "35000 Rennes",
    )
    assert split_address("Bât. A, 2e étage") == ("Bât. A, 2e étage",)


def test_a_wrapped_name_keeps_its_own_spelling() -> None:
    lines = block_from_lines(["Société Coopérative Ouvrière de Production", "5 rue du Port", "56100 Lorient"])
    assert lines[:2] == ["Société Coopérative Ouvrière de", "Production"]


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60)


@settings(max_examples=400, deadline=None)
@given(
    name=_text,
    contact=_text,
    building=_text,
    street=_text,
    locality_extra=_text,
    postcode=st.one_of(st.from_regex(r"\A[0-9]{5}\Z"), _text),
    city=_text,
)
def test_any_address_fits_la_poste_or_is_refused_in_plain_words(
    name: str, contact: str, building: str, street: str, locality_extra: str, postcode: str, city: str
) -> None:
    try:
        lines = address_block(
            name=name,
            contact=contact,
            building=building,
            street=street,
            locality_extra=locality_extra,
            postcode=postcode,
            city=city,
        )
    except AddressError as err:
        assert str(err)  # always says why
        return
    assert 2 <= len(lines) <= 6
    assert all(0 < len(line) <= MAX_CHARS for line in lines)
    assert lines[-1][:5].isdigit() and lines[-1] == lines[-1].upper()
