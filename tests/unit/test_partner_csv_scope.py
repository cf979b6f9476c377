"""A partner's scope (allowed types, territory) applied to file rows, as the API token does."""

from __future__ import annotations

import datetime as dt

from triggers.model import BusinessFacts, EventIn, Reject
from triggers.partner_csv import read_partner_chunks
from triggers.scope import in_territory, scope_reject

SIRET = "73282932000074"


def event(kind: str = "creation", commune: str | None = None) -> EventIn:
    facts = BusinessFacts(siret=SIRET, commune_code=commune) if commune else None
    return EventIn("partner:1", "e1", kind, dt.date(2026, 11, 2), siret=SIRET, business=facts)


def test_type_outside_the_allowed_list_is_rejected():
    reject = scope_reject(event("takeover"), allowed_types=["creation"], territory=[], commune_code=None)
    assert isinstance(reject, Reject) and reject.field == "type"
    assert scope_reject(event(), allowed_types=["creation"], territory=[], commune_code=None) is None
    assert scope_reject(event("takeover"), allowed_types=[], territory=[], commune_code=None) is None


def test_territory_by_departement_epci_or_commune_with_arrondissements():
    assert in_territory("35238", ["departement:35"])
    assert not in_territory("29019", ["departement:35"])
    assert in_territory("75111", ["commune:75056"])  # an arrondissement is in Paris
    assert in_territory("35238", ["region:53"])
    assert not in_territory("35238", ["nowhere:1"])
    reject = scope_reject(event(), allowed_types=[], territory=["departement:29"], commune_code="35238")
    assert reject is not None and reject.field == "commune_code"


def test_unknown_location_is_let_in_pending():
    assert scope_reject(event(), allowed_types=[], territory=["departement:29"], commune_code=None) is None


def test_file_rows_outside_the_scope_are_rejected_with_their_line(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(
        "external_id;type;siret;occurred_on;commune_code\n"
        f"a;creation;{SIRET};2026-11-02;35238\n"
        f"b;takeover;{SIRET};2026-11-02;35238\n"
        f"c;creation;{SIRET};2026-11-02;29019\n"
    )
    rejects: list[Reject] = []

    def check(e: EventIn) -> Reject | None:
        commune = e.business.commune_code if e.business else None
        return scope_reject(e, allowed_types=["creation"], territory=["departement:35"], commune_code=commune)

    chunks = read_partner_chunks(path, source="partner:1", contact_source="bge", on_reject=rejects.append,
                                 check=lambda events: [check(e) for e in events], chunk_size=2, today=dt.date.today())
    events = [e for chunk in chunks for e in chunk]
    assert [e.external_id for e in events] == ["a"]
    assert [(r.line, r.field) for r in rejects] == [(3, "type"), (4, "commune_code")]
