"""Partners as the doors see them: a token's stored form, the partner owning a token (cached a few seconds), the
partner a file or a feed names. Reads only, but `new_token`/`hash_token`/`forget_tokens` serve the writers of
store/admin.py."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine

from store.models import Partner

PARTNERS = Partner.__table__


def hash_token(token: str) -> str:
    """The stored form of a partner token (SHA-256: tokens are long random strings, not passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh partner token, shown once."""
    return "dcl_" + secrets.token_urlsafe(32)


# Partners seen recently, by token hash: a partner posting single events would otherwise pay one query
# per request. A revoked or rotated token stops working within TOKEN_CACHE_SECONDS in every process
# (at once in the process that rotated it).
TOKEN_CACHE_SECONDS = 10.0
_token_cache: dict[str, tuple[float, Partner]] = {}


def forget_tokens() -> None:
    """Drop the cached partners (after a rotation or revocation)."""
    _token_cache.clear()


def cached_partner(token: str) -> Partner | None:
    """The partner of `token` if it was looked up less than TOKEN_CACHE_SECONDS ago (no database access)."""
    cached = _token_cache.get(hash_token(token))
    return cached[1] if cached and cached[0] > time.monotonic() else None


def partner_for_token(engine: Engine, token: str) -> Partner | None:
    """The active partner owning `token`, if any."""
    key = hash_token(token)
    cached = _token_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    with engine.connect() as conn:
        row = conn.execute(select(PARTNERS).where(PARTNERS.c.token_hash == key, PARTNERS.c.active.is_(True))).first()
    if row is None:
        return None
    partner = Partner(**row._mapping)
    _token_cache[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, partner)
    return partner


def partner_named(engine: Engine, name: str) -> Partner | None:
    """The partner called `name` (active or not), if any: partner files and feeds name their partner."""
    with engine.connect() as conn:
        row = conn.execute(select(PARTNERS).where(PARTNERS.c.name == name)).first()
    return Partner(**row._mapping) if row is not None else None
