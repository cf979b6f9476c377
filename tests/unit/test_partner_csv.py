"""Partner CSV files: separators, BOM, both date spellings, the API's validation, explained rejects."""

from __future__ import annotations

import datetime as dt

import pytest

from triggers.model import Reject
from triggers.partner_csv import COLUMNS, PartnerFileError, PartnerStats, read_partner_csv

SIRET = "73282932000074"
HEADER = ";".join(COLUMNS)


def read(path, **kw):
    rejects: list[Reject] = []
    stats = PartnerStats()
    events = list(
        read_partner_csv(
            path, source="partner:bge", contact_source="bge", today=dt.date.today(), on_reject=rejects.append,
            stats=stats, **kw
        )
    )
    return events, rejects, stats


def write(tmp_path, text: str, name: str = "events.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_full_row_becomes_an_event_with_business_and_contacts(tmp_path):
    path = write(
        tmp_path,
        HEADER + "\n"
        "bge-1;creation;732 829 320 00074;2026-11-02;Boulangerie Dupain;4721Z;35238;"
        "Contact@Dupain.FR;06 12 34 56 78;12 rue de Nantes;35000;Rennes;oui\n",
    )
    [event], rejects, stats = read(path)
    assert rejects == [] and stats.read == 1
    assert (event.source, event.external_id, event.type, event.siret) == (
        "partner:bge",
        "bge-1",
        "creation",
        SIRET,
    )
    assert event.occurred_on == dt.date(2026, 11, 2)
    b = event.business
    assert (b.name, b.naf_code, b.commune_code) == ("Boulangerie Dupain", "47.21Z", "35238")
    assert (b.street, b.postal_code, b.city) == ("12 rue de Nantes", "35000", "Rennes")
    kinds = {c.kind: (c.value, c.consent, c.source) for c in b.contacts}
    assert kinds["email"] == ("Contact@dupain.fr", True, "bge")
    assert kinds["phone"] == ("+33612345678", True, "bge")


def test_comma_separator_bom_and_french_dates(tmp_path):
    text = "\ufeffexternal_id,type,siret,occurred_on\nx1,first_hire,73282932000074,02/11/2026\n"
    [event], rejects, _ = read(write(tmp_path, text))
    assert rejects == [] and event.occurred_on == dt.date(2026, 11, 2) and event.business is None


def test_column_order_is_free_and_names_are_case_insensitive(tmp_path):
    text = 'SIRET;Occurred_On;TYPE;External_Id\n"73282932000074";2026-10-01;closure;"a;b"\n'
    [event], _, _ = read(write(tmp_path, text))
    assert event.external_id == "a;b" and event.type == "closure"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("e1;creation;73282932000075;2026-11-02", "siret"),
        ("e2;party;73282932000074;2026-11-02", "type"),
        ("e3;creation;73282932000074;2026-31-12", "occurred_on"),
        ("e4;creation;73282932000074;2999-01-01", "occurred_on"),
        ("e5;creation;73282932000074", "row"),
        (";creation;73282932000074;2026-11-02", "external_id"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_field(tmp_path, row, field):
    text = "external_id;type;siret;occurred_on\n" + row + "\ngood;creation;73282932000074;2026-11-02\n"
    events, rejects, stats = read(write(tmp_path, text))
    assert [e.external_id for e in events] == ["good"]
    [reject] = rejects
    assert reject.line == 2 and reject.field == field and reject.reason and reject.raw
    assert stats.read == 2 and stats.rejected == 1


def test_bad_optional_fields_are_rejected_like_the_api(tmp_path):
    text = (
        HEADER + "\n"
        "a;creation;73282932000074;2026-11-02;;99.99Z;;;;;;;\n"
        "b;creation;73282932000074;2026-11-02;;;;not-an-email;;;;;\n"
        "c;creation;73282932000074;2026-11-02;;;;;12;;;;\n"
        "d;creation;73282932000074;2026-11-02;;;;;;;;;peut-être\n"
    )
    events, rejects, _ = read(write(tmp_path, text))
    assert events == []
    assert [(r.line, r.field) for r in rejects] == [
        (2, "business.naf_code"),
        (3, "contact.email"),
        (4, "contact.phone"),
        (5, "consent"),
    ]


def test_conversion_events_are_accepted(tmp_path):
    text = "external_id;type;siret;occurred_on\nc1;diagnostic_completed;73282932000074;2026-11-20\n"
    [event], _, _ = read(write(tmp_path, text))
    assert event.type == "diagnostic_completed"


def test_blank_lines_are_ignored(tmp_path):
    text = "external_id;type;siret;occurred_on\n\nc1;closure;73282932000074;2026-11-20\n;;;\n"
    events, rejects, stats = read(write(tmp_path, text))
    assert len(events) == 1 and rejects == [] and stats.read == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("id;kind\n1;2\n", "missing columns"),
        ("external_id;type;siret;occurred_on;colour\n", "unknown columns: colour"),
    ],
)
def test_wrong_headers_raise_a_clear_error(tmp_path, text, message):
    with pytest.raises(PartnerFileError, match=message):
        read(write(tmp_path, text))


def test_non_utf8_file_says_how_to_fix_it(tmp_path):
    text = "external_id;type;siret;occurred_on;name\ne;creation;73282932000074;2026-11-02;Crêperie\n"
    with pytest.raises(PartnerFileError, match="UTF-8"):
        read(write(tmp_path, text, encoding="cp1252"))
