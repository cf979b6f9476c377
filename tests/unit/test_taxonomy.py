"""The métier taxonomy: NAF sub-classes and their families, from the shipped CSV files."""

import csv
import io
from importlib import resources

import pytest

from segments import taxonomy
from segments.taxonomy import families, family_for_naf, naf_entries, naf_entry, normalize_naf

EXPECTED_FAMILIES = {
    "batiment",
    "alimentation",
    "hotellerie_restauration",
    "beaute_bien_etre",
    "commerce_detail",
    "automobile",
    "transport",
    "services_particuliers",
    "services_entreprises",
    "artisanat_production",
    "agriculture",
    "sante",
    "autre",
}


def test_every_naf_subclass_is_present_once():
    entries = naf_entries()
    assert len(entries) == 732
    assert all(code == entry.code for code, entry in entries.items())
    assert all(normalize_naf(code) == code for code in entries)


def test_families_are_the_agreed_slugs_plus_at_most_two():
    slugs = set(families())
    assert EXPECTED_FAMILIES <= slugs
    assert len(slugs - EXPECTED_FAMILIES) <= 2
    for family in families().values():
        assert family.label and family.trade_phrase and family.description


def test_every_subclass_maps_to_one_known_family_and_has_a_metier():
    known = set(families())
    for entry in naf_entries().values():
        assert entry.family in known, entry
        assert entry.metier.strip(), entry
        assert entry.label.strip(), entry


def test_every_family_but_none_is_used():
    used = {entry.family for entry in naf_entries().values()}
    assert used == set(families())


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("43.22A", "batiment"),
        ("10.71C", "alimentation"),
        ("10.71D", "alimentation"),
        ("56.10A", "hotellerie_restauration"),
        ("96.02A", "beaute_bien_etre"),
        ("96.02B", "beaute_bien_etre"),
        ("45.20A", "automobile"),
        ("47.30Z", "automobile"),
        ("47.76Z", "commerce_detail"),
        ("86.21Z", "sante"),
        ("01.21Z", "agriculture"),
        ("49.32Z", "transport"),
        ("69.20Z", "services_entreprises"),
        ("95.23Z", "services_particuliers"),
        ("25.62B", "artisanat_production"),
    ],
)
def test_spot_checks_of_the_mapping(code, family):
    assert family_for_naf(code) == family


@pytest.mark.parametrize(
    ("code", "metier"),
    [
        ("43.22A", "plombier-chauffagiste"),
        ("10.71C", "boulanger-pâtissier"),
        ("96.02A", "coiffeur"),
        ("56.10A", "restaurateur"),
        ("43.21A", "électricien"),
        ("47.76Z", "fleuriste"),
        ("45.20A", "garagiste"),
        ("49.32Z", "taxi"),
        ("43.99C", "maçon"),
    ],
)
def test_common_trades_have_the_owner_word(code, metier):
    assert naf_entry(code).metier == metier


@pytest.mark.parametrize("raw", ["4322A", "43.22a", "43.22A", " 43.22A ", "4322a"])
def test_normalize_naf_accepts_usual_spellings(raw):
    assert normalize_naf(raw) == "43.22A"


@pytest.mark.parametrize("raw", ["", "43", "43.22", "432A", "43.221", "AB.CDE", "43-22A", "43.22AB", "NAF"])
def test_normalize_naf_rejects_garbage_with_a_clear_message(raw):
    with pytest.raises(ValueError, match="NAF code"):
        normalize_naf(raw)


def test_normalize_naf_rejects_non_strings():
    with pytest.raises(ValueError):
        normalize_naf(4322)  # type: ignore[arg-type]


def test_unknown_or_malformed_codes_give_none():
    assert family_for_naf("99.99Z") is None
    assert naf_entry("99.99Z") is None
    assert family_for_naf("garbage") is None


def test_lookups_accept_any_spelling():
    assert naf_entry("4322a") == naf_entry("43.22A")
    assert family_for_naf("1071c") == "alimentation"


def test_tables_are_loaded_once():
    assert naf_entries() is naf_entries()
    assert families() is families()
    assert taxonomy.naf_entries.cache_info().misses == 1


def test_shipped_naf_file_uses_only_known_families():
    def rows(name):
        text = resources.files("segments.data").joinpath(name).read_text(encoding="utf-8")
        return list(csv.DictReader(io.StringIO(text)))

    known = {row["family"] for row in rows("families.csv")}
    naf = rows("naf.csv")
    assert len(naf) == 732 and len({row["code"] for row in naf}) == 732
    assert {row["family"] for row in naf} <= known
