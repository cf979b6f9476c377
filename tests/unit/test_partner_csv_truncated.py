"""Issue 14, finding 13: a partner file cut inside its last field (a quote never closed) is refused on that
line, with the field and the reason; a complete file, with or without its last line end, is read whole."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.utils.factories import siret
from triggers.model import Reject
from triggers.partner_csv import _open_quote, read_partner_csv

DAY = (dt.date.today() - dt.timedelta(days=3)).isoformat()
HEADER = "external_id;type;siret;occurred_on;commune_code;name\n"


def read(path):
    rejects: list[Reject] = []
    events = list(read_partner_csv(path, source="partner:1", contact_source="bge", today=dt.date.today(),
                                   on_reject=rejects.append))
    return events, rejects


def test_a_file_cut_inside_its_last_quoted_field_rejects_that_line(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(HEADER + f'a;creation;{siret()};{DAY};35238;"Plomberie Durand"\n'
                    f'b;creation;{siret()};{DAY};35238;"Boulangerie Mar', encoding="utf-8")
    events, rejects = read(path)
    assert [e.external_id for e in events] == ["a"]
    assert [(r.line, r.field) for r in rejects] == [(3, "name")]
    assert "coupée" in rejects[0].reason and "guillemet" in rejects[0].reason


def test_a_quote_left_open_swallows_the_rest_and_is_refused_where_it_starts(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(HEADER + f'a;creation;{siret()};{DAY};35238;"Plomberie Durand\n'
                    f'b;creation;{siret()};{DAY};35238;Garage\n', encoding="utf-8")
    events, rejects = read(path)
    assert events == [] and [(r.line, r.field) for r in rejects] == [(2, "name")]


@pytest.mark.parametrize("end", ["\n", ""])
def test_a_complete_file_is_read_whole_with_or_without_its_last_line_end(tmp_path, end):
    path = tmp_path / "ok.csv"
    path.write_text(HEADER + f'a;creation;{siret()};{DAY};35238;"Plomberie ""Durand"""\n'
                    f'b;creation;{siret()};{DAY};35238;"Boulangerie Martin"{end}', encoding="utf-8")
    events, rejects = read(path)
    assert rejects == [] and [e.business.name for e in events] == ['Plomberie "Durand"', "Boulangerie Martin"]


@pytest.mark.parametrize(("text", "open_"), [
    ('x;y', False), ('x;"ab', True), ('x;"a""b', True), ('x;"a""b"', False), ('x;"a""', True),
    ('x;"d"e', False), ('x;b"c', False), ('x;"ab\ny;z\n', True), ('x;"a"\n', False),
])
def test_open_quote_reads_quotes_as_the_csv_module_does(text, open_):
    assert _open_quote(text, ";") is open_
