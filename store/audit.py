"""The audit trail of personal data: who looked at, exported or erased what, when, from which role and territory.

Append-only: this module inserts and reads, it never updates nor deletes a row (retention purges leave it).
Targets name rows by id ("business:12"), never a contact, so an erasure leaves nothing personal here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store.models import AuditEntry, UserAccount

AUDIT = AuditEntry.__table__
USERS = UserAccount.__table__
ACTIONS = {
    "view_business": "consultation d'une entreprise",
    "export_csv": "export CSV",
    "export_xlsx": "export Excel",
    "privacy_export": "export des données personnelles",
    "erase": "effacement",
    "purge": "purge (durée de conservation)",
    "campaign_save": "enregistrement d'une campagne",
}


def record(conn: Connection, *, actor: str, role: str, action: str, target: str,
           territory: dict[str, Any] | None = None, detail: dict[str, Any] | None = None,
           at: dt.datetime) -> None:
    """Append one entry, at `at` (the unit of work's moment)."""
    conn.execute(AUDIT.insert().values(at=at, actor=actor[:320], role=role[:20], action=action,
                                       target=target[:200], territory={k: v for k, v in (territory or {}).items() if v},
                                       detail=detail or {}))


def user_email(conn: Connection, user_id: int) -> str:
    """How the trail names a dashboard user: their e-mail."""
    email = conn.execute(select(USERS.c.email).where(USERS.c.id == user_id)).scalar_one_or_none()
    return email or f"user:{user_id}"


def entries(conn: Connection, *, since: dt.datetime | None = None, actor: str | None = None,
            limit: int = 1000) -> list[dict[str, Any]]:
    """The latest entries first, from `since`, of one actor when given."""
    query = select(AUDIT).order_by(AUDIT.c.at.desc(), AUDIT.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if actor:
        query = query.where(AUDIT.c.actor == actor.strip().lower())
    return [dict(r._mapping) for r in conn.execute(query)]
