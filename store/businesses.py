"""Bulk upsert of business facts: what a door knows fills in, never erases what another door knew."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from segments.taxonomy import family_for_naf
from segments.territory import commune as commune_info
from store.models import Business, utcnow
from store.sql import chunks, insert_for_dialect
from triggers.model import BusinessFacts

BUSINESS = Business.__table__

# Columns a later door may fill in; None in the incoming row keeps the stored value (COALESCE).
_MERGED = (
    "name", "naf_code", "naf25_code", "metier_family", "commune_code", "epci_code", "departement_code",
    "region_code", "tranche_effectifs", "employer", "creation_date", "state", "email", "email_source",
    "phone", "phone_source", "street", "postal_code", "city", "address_source",
)


def business_row(facts: BusinessFacts) -> dict:
    """The table row of one BusinessFacts, with métier family and territory derived from codes."""
    row = {
        "siret": facts.siret,
        "siren": facts.siret[:9],
        "name": facts.name,
        "naf_code": facts.naf_code,
        "naf25_code": facts.naf25_code,
        "metier_family": family_for_naf(facts.naf_code) if facts.naf_code else None,
        "commune_code": None,
        "epci_code": None,
        "departement_code": None,
        "region_code": None,
        "tranche_effectifs": facts.tranche_effectifs,
        "employer": facts.employer,
        "creation_date": facts.creation_date,
        "state": facts.state,
        "do_not_contact": bool(facts.do_not_contact),
        "email": None, "email_source": None, "phone": None, "phone_source": None, "phone_consent": False,
        "street": facts.street, "postal_code": facts.postal_code, "city": facts.city,
        "address_source": None,
        "updated_at": utcnow(),
    }
    if facts.commune_code:
        info = commune_info(facts.commune_code)
        if info:
            row.update(commune_code=info.code, epci_code=info.epci, departement_code=info.departement,
                       region_code=info.region)
    for contact in facts.contacts:
        if contact.kind == "email" and not row["email"]:
            row["email"], row["email_source"] = contact.value, contact.source
        elif contact.kind == "phone" and not row["phone"]:
            row["phone"], row["phone_source"] = contact.value, contact.source
            row["phone_consent"] = contact.consent
    if facts.street and facts.contacts:
        row["address_source"] = facts.contacts[0].source
    return row


def upsert_businesses(conn: Connection, facts: Iterable[BusinessFacts], chunk: int = 500) -> dict[str, int]:
    """Insert or merge businesses; returns {siret: business id} for every SIRET given."""
    rows_by_siret: dict[str, dict] = {}
    for f in facts:
        rows_by_siret[f.siret] = business_row(f)  # the last word on a SIRET within a batch wins
    ids: dict[str, int] = {}
    rows = list(rows_by_siret.values())
    # Rows that state "active"/"closed" may change it; rows that do not keep the stored state.
    with_state = [r for r in rows if r["state"] is not None]
    without_state = [r for r in rows if r["state"] is None]
    for group, sets_state in ((with_state, True), (without_state, False)):
        for part in chunks(group, chunk):
            for row in part:
                row["created_at"] = row["updated_at"]
                row["state"] = row["state"] or "active"
            # DO UPDATE returns the row whether it was inserted or merged: no second query for the ids.
            result = conn.execute(_upsert(conn.dialect.name, sets_state), part)
            ids.update({siret: id_ for id_, siret in result})
    return ids


@lru_cache(maxsize=8)
def _upsert(dialect: str, sets_state: bool):
    # Built once per dialect: constructing this statement costs more than running it for one row.
    stmt = insert_for_dialect(dialect, BUSINESS)
    excluded = stmt.excluded
    update = {c: func.coalesce(excluded[c], BUSINESS.c[c]) for c in _MERGED if c != "state"}
    if sets_state:
        update["state"] = excluded.state
    update["updated_at"] = excluded.updated_at
    # A "not to contact" mark is sticky; consent once given by a partner stays true.
    update["do_not_contact"] = BUSINESS.c.do_not_contact | excluded.do_not_contact
    update["phone_consent"] = BUSINESS.c.phone_consent | excluded.phone_consent
    return stmt.on_conflict_do_update(index_elements=["siret"], set_=update).returning(BUSINESS.c.id,
                                                                                        BUSINESS.c.siret)


def ids_for_sirets(conn: Connection, sirets: Iterable[str]) -> dict[str, int]:
    """Known business ids for SIRETs."""
    out: dict[str, int] = {}
    for part in chunks(sorted(set(sirets)), 900):
        rows = conn.execute(select(BUSINESS.c.siret, BUSINESS.c.id).where(BUSINESS.c.siret.in_(part)))
        out.update(dict(rows.all()))
    return out
