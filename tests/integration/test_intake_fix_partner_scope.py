"""A partner file is checked against the partner's scope once per chunk, with the API's rule and messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event as sa_event

from orchestrator.app.ingest import import_partner_file, ingest_sirene
from orchestrator.app.intake import PartnerScope, scope_rejects
from store.admin import add_partner
from tests.unit.test_sirene import row, write
from triggers.model import BusinessFacts, EventIn, Reject
from triggers.sirene import luhn_ok

TODAY = dt.date(2026, 11, 27)


def sirets(count: int) -> list[str]:
    """Valid SIRETs (SIREN and SIRET keys both right), in a stable order."""
    out: list[str] = []
    n = 100_000_000
    while len(out) < count:
        n += 1
        siren = str(n)
        if not luhn_ok(siren):
            continue
        siret = next(siren + f"{nic:05d}" for nic in range(10, 100) if luhn_ok(siren + f"{nic:05d}"))
        out.append(siret)
    return out


class Sink:
    def __init__(self) -> None:
        self.rejects: list[Reject] = []

    def write(self, reject: Reject) -> None:
        self.rejects.append(reject)


@contextmanager
def place_reads(engine) -> Iterator[list[str]]:
    """The store reads of business places made inside the block."""
    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        if "business.commune_code" in statement and "business.siret IN" in statement:
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", before)


def test_file_scope_same_rejects_one_store_read_per_chunk(engine, tmp_path):
    add_partner(engine, "cma35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    s = sirets(8)
    # s[1] is in Finistère and s[2] in Rennes according to Sirene; the file does not say where they are.
    ingest_sirene(
        engine,
        write(tmp_path / "s.csv", [row(siret=s[1], codeCommuneEtablissement="29019"), row(siret=s[2])]),
        today=TODAY, now=dt.datetime.now(dt.UTC),
    )
    path = tmp_path / "cma.csv"
    path.write_text(
        "external_id;type;siret;occurred_on;commune_code\n"
        f"ok;creation;{s[0]};2026-11-02;35238\n"  # line 2
        f"wrong-type;first_hire;{s[0]};2026-11-02;35238\n"  # 3
        f"placed-elsewhere;creation;{s[1]};2026-11-02;\n"  # 4: Sirene's commune
        f"placed-here;creation;{s[2]};2026-11-02;\n"  # 5
        f"said-elsewhere;creation;{s[3]};2026-11-02;29019\n"  # 6: the row's commune
        f"bad-date;creation;{s[4]};2026-13-02;\n"  # 7: the schema's reject, between scope rejects
        f"unknown;creation;{s[5]};2026-11-02;\n"  # 8: nobody knows where: let in, pending
        f"again-placed-by-row-2;creation;{s[0]};2026-11-03;\n",  # 9: the store knows it from line 2
        encoding="utf-8",
    )
    sink = Sink()
    with place_reads(engine) as reads:
        report = import_partner_file(engine, path, partner="cma35", rejects=sink, chunk_size=4, today=dt.date.today(),
                                     now=dt.datetime.now(dt.UTC))
    assert report.read == 8 and report.accepted == 4
    assert [(r.line, r.field) for r in sink.rejects] == [
        (3, "type"),
        (4, "commune_code"),
        (6, "commune_code"),
        (7, "occurred_on"),
    ]
    assert sink.rejects[0].reason == "type non autorisé pour ce partenaire: first_hire"
    assert sink.rejects[1].reason == "hors du territoire du partenaire: commune 29019"
    assert sink.rejects[1].raw == f"placed-elsewhere;creation;{s[1]};2026-11-02;"
    assert report.events["creation"] == 4 and report.events["pending (business not known yet)"] == 1
    # Per chunk of four rows, not per row: the scope's read of places, and the store's read of what it knows
    # before applying the rows' details (a partner may not overwrite another's).
    assert len(reads) == 4


def test_api_and_file_use_the_same_scope_rule(engine, tmp_path):
    s = sirets(3)
    ingest_sirene(engine, write(tmp_path / "s.csv", [row(siret=s[1], codeCommuneEtablissement="29019")]),
                  today=TODAY, now=dt.datetime.now(dt.UTC))  # fmt: skip
    events = [
        EventIn("partner:1", "a", "creation", TODAY, siret=s[0], business=BusinessFacts(s[0], commune_code="75111")),
        EventIn("partner:1", "b", "takeover", TODAY, siret=s[0]),
        EventIn("partner:1", "c", "creation", TODAY, siret=s[1]),
        EventIn("partner:1", "d", "creation", TODAY, siret=s[2]),
    ]
    scope = PartnerScope(("creation",), ("commune:75056", "nowhere:1"))
    by_api = scope_rejects(engine, events, allowed_types=["creation"], territory=["commune:75056", "nowhere:1"])
    assert [r and r.field for r in by_api] == [None, "type", "commune_code", None]
    assert scope.rejects(engine, events) == by_api
    assert PartnerScope().rejects(engine, events) == [None] * 4
