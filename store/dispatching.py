"""Reads the dispatcher needs beside the outbox's own (`store.outbox`): who speaks for each campaign of a batch,
and whether messages are still on their way."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from store.models import Campaign, Message

CAMPAIGNS = Campaign.__table__
MESSAGES = Message.__table__


def campaign_voices(conn: Connection, campaign_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """Each campaign's own words about who speaks, from its spec: {"sender": {...}, "owner": {...}} (the parts
    present), by id. The channels sign with them (an e-mail's From, a letter's sender)."""
    if not campaign_ids:
        return {}
    rows = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id.in_(set(campaign_ids))))
    return {campaign_id: {key: (spec or {})[key] for key in ("sender", "owner") if (spec or {}).get(key)}
            for campaign_id, spec in rows}


def still_on_their_way(conn: Connection) -> bool:
    """Whether messages are planned (a retry included) or claimed by a dispatcher."""
    return bool(conn.execute(select(func.count()).select_from(MESSAGES)
                             .where(MESSAGES.c.status.in_(("planned", "claimed")))).scalar())
