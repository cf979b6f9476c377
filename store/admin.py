"""Administrative writes: partners and campaigns."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from orchestrator.core.campaign_spec import CampaignSpec
from store.models import Campaign, Partner
from store.partners import forget_tokens, hash_token, new_token

PARTNERS = Partner.__table__
CAMPAIGNS = Campaign.__table__


def add_partner(engine: Engine, name: str, types: list[str], territory: list[str] | None = None, *,
                now: dt.datetime) -> str:
    """Create a partner at `now` (or rotate its token) and return the new token, to be shown once."""
    token = new_token()
    with engine.begin() as conn:
        existing = conn.execute(select(PARTNERS.c.id).where(PARTNERS.c.name == name)).first()
        values = {"token_hash": hash_token(token), "allowed_types": types, "territory": territory or [],
                  "active": True, "revoked_at": None}
        if existing:
            conn.execute(update(PARTNERS).where(PARTNERS.c.id == existing.id).values(**values))
        else:
            conn.execute(PARTNERS.insert().values(name=name, created_at=now, **values))
    forget_tokens()
    return token


def revoke_partner(engine: Engine, name: str, *, now: dt.datetime) -> bool:
    """Revoke a partner's token at `now`: every request with it answers 401 (at once in this process, within
    TOKEN_CACHE_SECONDS in the others); `declic partners add NAME` gives it a new token later. False when
    unknown."""
    with engine.begin() as conn:
        result = conn.execute(update(PARTNERS).where(PARTNERS.c.name == name)
                              .values(active=False, revoked_at=now))
    forget_tokens()
    return bool(result.rowcount)


class CampaignNameTaken(ValueError):
    """A new campaign asked for a name another campaign already has."""


def apply_campaign(
    engine: Engine, spec: CampaignSpec, *, now: dt.datetime, create_only: bool = False, campaign_id: int | None = None
) -> tuple[int, int, str]:
    """Create or update a campaign from its spec at `now`; a changed spec gets a new version.

    Returns (campaign id, version, "created" | "updated" | "unchanged"). Messages already planned keep
    their version; steps already sent are never sent again (the outbox is unique per enrollment and step).
    `create_only` refuses a name already taken (CampaignNameTaken) instead of updating that campaign;
    `campaign_id` updates only that campaign (its name must be the spec's): the dashboard never reaches a
    campaign through a name typed in a form.
    """
    with engine.begin() as conn:
        return apply_campaign_in(conn, spec, now=now, create_only=create_only, campaign_id=campaign_id)


def apply_campaign_in(
    conn: Connection, spec: CampaignSpec, *, now: dt.datetime, create_only: bool = False,
    campaign_id: int | None = None,
) -> tuple[int, int, str]:
    """`apply_campaign` inside the caller's transaction (a save and its audit entry commit together)."""
    data = spec.model_dump(mode="json")
    row = conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.name == spec.name)).first()
    if row is not None and (create_only or (campaign_id is not None and row.id != campaign_id)):
        raise CampaignNameTaken(spec.name)
    if row is None and campaign_id is not None:
        raise LookupError(f"campaign {campaign_id} is not named {spec.name}")
    if row is None:
        try:
            with conn.begin_nested():
                result = conn.execute(CAMPAIGNS.insert().values(
                    name=spec.name, owner=spec.owner.name, status="active", version=1, spec=data,
                    starts_on=spec.starts_on, ends_on=spec.ends_on, created_at=now, updated_at=now))
        except IntegrityError as exc:  # created by someone else in the meantime
            raise CampaignNameTaken(spec.name) from exc
        return result.inserted_primary_key[0], 1, "created"
    if row.spec == data:
        return row.id, row.version, "unchanged"
    conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == row.id).values(
        owner=spec.owner.name, version=row.version + 1, spec=data, starts_on=spec.starts_on,
        ends_on=spec.ends_on, updated_at=now))
    return row.id, row.version + 1, "updated"


def set_campaign_status(engine: Engine, name: str, status: str, *, now: dt.datetime) -> bool:
    """Pause, resume (active) or end a campaign at `now`; False when unknown."""
    with engine.begin() as conn:
        values = {"status": status, "updated_at": now}
        if status == "active":  # resumed by a person: the automatic pause's reason no longer holds
            values.update(paused_reason=None, paused_at=None)
        result = conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.name == name).values(**values))
    return bool(result.rowcount)
