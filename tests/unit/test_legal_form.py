"""The segment field `legal_forms` (INSEE catégorie juridique) and its shipped labels."""

from __future__ import annotations

import pytest

from segments.language import legal_form_prefixes, parse_segment
from segments.taxonomy import legal_form_label, legal_forms


def test_labels_cover_levels_one_and_two():
    known = legal_forms()
    assert {c for c in known if len(c) == 1} == set("0123456789")
    assert all(len(c) in (1, 2) and c.isdigit() for c in known)
    assert all(c[:1] in known for c in known)  # every level II sits under a level I
    assert legal_form_label("1000") == "Entrepreneur individuel"
    assert legal_form_label("5499") == "Société à responsabilité limitée (SARL)"
    assert legal_form_label("5710") == "Société par actions simplifiée (SAS)"
    assert legal_form_label("5") == "Société commerciale"
    assert legal_form_label("9220") == "Association loi 1901 ou assimilé"
    for bad in ("", None, "59", "571", "57100", "5x10", "５７"):
        assert legal_form_label(bad) is None


def test_segment_accepts_codes_of_each_level_and_unknown():
    seg = parse_segment({"legal_forms": ["1", " 54 ", "5710", "unknown"]})
    assert seg.legal_forms == ["1", "54", "5710", "unknown"]
    assert legal_form_prefixes(seg.legal_forms) == (["1", "54", "5710"], True)
    assert legal_form_prefixes(["5", "57", "5710"]) == (["5"], False)  # "5" covers the others


@pytest.mark.parametrize("bad", ["59", "SAS", "571", "12345"])
def test_segment_refuses_unknown_codes_in_french(bad):
    with pytest.raises(ValueError, match=f"catégories juridiques inconnues: {bad} .*54 SARL"):
        parse_segment({"legal_forms": ["57", bad]})
