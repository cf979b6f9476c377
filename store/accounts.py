"""Dashboard users and the one place that scopes every query of a signed-in user.

Roles: operator (everything), collectivité (its territory: the campaigns whose owner territory lies
inside it, the businesses located in it), ambassador (its own call tasks only). Routes never filter
by themselves: they ask this module for the visible campaign ids, a business clause or a task clause,
and get None (404) for anything outside the scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, false, func, select, true, update
from sqlalchemy.engine import Connection, Engine

from orchestrator.core.campaign_spec import TerritorySpec
from segments.territory import TerritoryError, parse_territory_text
from store.models import Business, CallTask, Campaign, Message, SignInFailure, TriggerEvent, UserAccount
from store.segment_sql import territory_clause

USERS = UserAccount.__table__
CAMPAIGNS = Campaign.__table__
BUSINESS = Business.__table__
TASKS = CallTask.__table__
MESSAGES = Message.__table__
FAILURES = SignInFailure.__table__
ROLES = ("operator", "collectivite", "ambassador")
ROLE_LABELS = {"operator": "opérateur", "collectivite": "collectivité", "ambassador": "ambassadeur"}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this when the e-mail is unknown keeps the answer time the same (no user enumeration).
_DUMMY_HASH = _hasher.hash("declic-no-such-user")


class AccountError(ValueError):
    """A user that cannot be created as asked."""


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def add_user(
    engine: Engine,
    *,
    email: str,
    name: str,
    password: str,
    role: str,
    territory: dict[str, list[str]] | None = None,
    assignee: str | None = None,
    now: dt.datetime,
) -> int:
    """Create a user at `now`, or update the one with this e-mail (password, role, scope); returns its id."""
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"rôle inconnu : {role} (connus : {', '.join(ROLES)})")
    if len(password) < 10:
        raise AccountError("mot de passe trop court (10 caractères au moins)")
    spec = TerritorySpec.model_validate(territory or {})
    if role == "collectivite":
        if spec.is_empty():
            raise AccountError("une collectivité a besoin d'un territoire (ex. departement:35 ou « Rennes Métropole »)")
        unknown = spec.unknown_codes()
        if unknown:
            raise AccountError(f"codes de territoire inconnus : {', '.join(unknown)}")
    if role == "ambassador" and not assignee:
        raise AccountError("un ambassadeur a besoin de sa file d'appels (ex. ambassador:7)")
    values = {
        "name": name,
        "password_hash": hash_password(password),
        "role": role,
        "territory": spec.model_dump() if role == "collectivite" else {},
        "assignee": assignee if role == "ambassador" else None,
        "active": True,
    }
    with engine.begin() as conn:
        row = conn.execute(select(USERS.c.id).where(USERS.c.email == email)).first()
        if row:  # a new password (or role, or scope) ends the sessions opened with the old one
            conn.execute(update(USERS).where(USERS.c.id == row.id)
                         .values(**values, session_epoch=USERS.c.session_epoch + 1))
            return row.id
        return conn.execute(
            USERS.insert().values(email=email, created_at=now, **values)
        ).inserted_primary_key[0]


def authenticate(engine: Engine, email: str, password: str, now: dt.datetime) -> Any | None:
    """The active user with this e-mail and password, else None (same work either way); a success is its last
    sign-in, at `now`."""
    with engine.connect() as conn:
        row = conn.execute(
            select(USERS).where(USERS.c.email == email.strip().lower(), USERS.c.active.is_(True))
        ).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    with engine.begin() as conn:
        values: dict[str, Any] = {"last_login_at": now}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = hash_password(password)
        conn.execute(update(USERS).where(USERS.c.id == row.id).values(**values))
    return row


@dataclass(frozen=True)
class SignInLimits:
    """How many password checks may run: per (e-mail, source address) and per source address, within a
    window; an attempt refused for being over a limit may be tried again once its oldest check ages out."""
    per_email_and_source: int = 5
    per_source: int = 30
    window: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SignInAttempt:
    """A sign-in attempt: `attempt_id` when its password may be checked, else how long to wait."""
    attempt_id: int | None
    retry_after: dt.timedelta = dt.timedelta(0)

    @property
    def allowed(self) -> bool:
        return self.attempt_id is not None


def begin_signin(
    engine: Engine, email: str, source: str, now: dt.datetime, limits: SignInLimits = SignInLimits()
) -> SignInAttempt:
    """Record an attempt *before* its password is checked (it counts as a wrong password until it proves
    right), then count: over a limit, the attempt is withdrawn and refused.

    The row is committed before the count, so of attempts racing in any number of web processes each one
    counts every attempt committed before it: no more than the limit ever reach the password check. The
    lockout is per e-mail *and* source address (someone typing wrong passwords for a known e-mail from
    elsewhere cannot keep its owner out) and releases itself when the window passes; refused attempts are
    not recorded, so hammering does not lengthen it.
    """
    email, source = email.strip().lower(), source[:64]
    since = now - limits.window
    with engine.begin() as conn:
        # Aged out (this pair's only: attempts of one pair never wait on another's rows).
        conn.execute(delete(FAILURES).where(FAILURES.c.email == email, FAILURES.c.source == source,
                                            FAILURES.c.at < since))
        attempt_id = conn.execute(
            FAILURES.insert().values(email=email, source=source, at=now)
        ).inserted_primary_key[0]
    recent = FAILURES.c.at >= since
    with engine.begin() as conn:
        pair = select(func.count(), func.min(FAILURES.c.at)).where(
            FAILURES.c.email == email, FAILURES.c.source == source, recent)
        from_source = select(func.count(), func.min(FAILURES.c.at)).where(FAILURES.c.source == source, recent)
        waits = []
        for query, limit in ((pair, limits.per_email_and_source), (from_source, limits.per_source)):
            count, oldest = conn.execute(query).one()
            if count > limit:
                waits.append(_as_utc(oldest) + limits.window - now)
        if not waits:
            return SignInAttempt(attempt_id)
        conn.execute(delete(FAILURES).where(FAILURES.c.id == attempt_id))
    return SignInAttempt(None, max(max(waits), dt.timedelta(seconds=1)))


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def signin_succeeded(engine: Engine, email: str, source: str, now: dt.datetime,
                     limits: SignInLimits = SignInLimits()) -> None:
    """A right password: the wrong ones typed for this e-mail from this address no longer count; the rows
    every pair left that aged out go too."""
    with engine.begin() as conn:
        conn.execute(delete(FAILURES).where(FAILURES.c.email == email.strip().lower(),
                                            FAILURES.c.source == source[:64]))
        conn.execute(delete(FAILURES).where(FAILURES.c.at < now - limits.window))


def end_sessions(engine: Engine, user_id: int) -> None:
    """Sign this user out everywhere: every session cookie issued so far stops being accepted."""
    with engine.begin() as conn:
        conn.execute(update(USERS).where(USERS.c.id == user_id)
                     .values(session_epoch=USERS.c.session_epoch + 1))


def set_user_active(engine: Engine, email: str, active: bool) -> bool:
    """Disable a user (it can no longer sign in and its open sessions end at once) or enable it again;
    False when no user has this e-mail."""
    values: dict[str, Any] = {"active": active}
    if not active:
        values["session_epoch"] = USERS.c.session_epoch + 1
    with engine.begin() as conn:
        result = conn.execute(update(USERS).where(USERS.c.email == email.strip().lower()).values(**values))
    return bool(result.rowcount)


def user_by_id(engine: Engine, user_id: int) -> Any | None:
    """The active user with this id, else None."""
    with engine.connect() as conn:
        return conn.execute(select(USERS).where(USERS.c.id == user_id, USERS.c.active.is_(True))).first()


@dataclass(frozen=True)
class Scope:
    """What a signed-in user may see."""
    user_id: int
    role: str
    name: str
    territory: dict[str, list[str]] = field(default_factory=dict)
    assignee: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def sees_campaigns(self) -> bool:
        return self.role in ("operator", "collectivite")


def scope_of(user) -> Scope:
    """The scope of a user row."""
    return Scope(user.id, user.role, user.name, dict(user.territory or {}), user.assignee)


@lru_cache(maxsize=1024)
def _communes(territory_key: tuple) -> frozenset[str]:
    spec = TerritorySpec.model_validate({k: list(v) for k, v in territory_key})
    return frozenset(spec.communes_covered())


def _key(territory: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(sorted(v or []))) for k, v in territory.items()))


def territory_contains(outer: dict[str, Any], inner: dict[str, Any]) -> bool:
    """Does the territory `inner` lie entirely inside `outer` (non-empty)?"""
    inner_communes = _communes(_key(inner))
    return bool(inner_communes) and inner_communes <= _communes(_key(outer))


def visible_campaign_ids(conn: Connection, scope: Scope) -> list[int] | None:
    """Ids of the campaigns the scope sees; None means all (operator)."""
    if scope.is_operator:
        return None
    if scope.role != "collectivite":
        return []
    rows = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.spec)).all()
    # A co-signed campaign is seen by each of its owners (`co_owners` of the spec).
    return [
        r.id
        for r in rows
        if any(territory_contains(scope.territory, (owner or {}).get("territory") or {})
               for owner in [(r.spec or {}).get("owner"), *((r.spec or {}).get("co_owners") or [])])
    ]


def same_territory(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two territories cover the same communes (however they are written)?"""
    return _communes(_key(a)) == _communes(_key(b))


def owns_campaign(scope: Scope, row: Any) -> bool:
    """May the scope change this campaign (a row with its spec)? An operator any; a collectivité only the
    campaigns whose owner territory is its own (the same communes): it sees the campaigns of the smaller
    collectivités inside its territory, but may only copy them."""
    if scope.is_operator:
        return True
    if scope.role != "collectivite":
        return False
    mine = _communes(_key(scope.territory))
    theirs = _communes(_key(((row.spec or {}).get("owner") or {}).get("territory") or {}))
    return bool(mine) and theirs == mine


def campaigns(conn: Connection, scope: Scope) -> list[Any]:
    """The campaigns the scope sees, newest first."""
    ids = visible_campaign_ids(conn, scope)
    query = select(CAMPAIGNS).order_by(CAMPAIGNS.c.created_at.desc(), CAMPAIGNS.c.id.desc())
    if ids is not None:
        query = query.where(CAMPAIGNS.c.id.in_(ids or [-1]))
    return conn.execute(query).all()


def campaign(conn: Connection, scope: Scope, campaign_id: int) -> Any | None:
    """One campaign if the scope sees it, else None."""
    ids = visible_campaign_ids(conn, scope)
    if ids is not None and campaign_id not in ids:
        return None
    return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id)).first()


def business_clause(scope: Scope):
    """A WHERE clause on the business table limiting it to the scope."""
    if scope.is_operator:
        return true()
    if scope.role != "collectivite":
        return false()
    return territory_clause(BUSINESS.c, scope.territory)


def business(conn: Connection, scope: Scope, business_id: int) -> Any | None:
    """One business if the scope sees it, else None."""
    return conn.execute(select(BUSINESS).where(BUSINESS.c.id == business_id, business_clause(scope))).first()


def task_clause(conn: Connection, scope: Scope):
    """A WHERE clause on the call-task table limiting it to the scope."""
    if scope.is_operator:
        return true()
    if scope.role == "ambassador":
        return TASKS.c.assignee == scope.assignee if scope.assignee else false()
    ids = visible_campaign_ids(conn, scope) or [-1]
    own_messages = select(MESSAGES.c.id).where(MESSAGES.c.campaign_id.in_(ids))
    return TASKS.c.message_id.in_(own_messages)


def task(conn: Connection, scope: Scope, task_id: int) -> Any | None:
    """One call task if the scope sees it, else None."""
    return conn.execute(select(TASKS).where(TASKS.c.id == task_id, task_clause(conn, scope))).first()


def parse_territory(text: str) -> dict[str, list[str]]:
    """ "departement:35, Rennes Métropole" -> {"departements": ["35"], "epci": ["243500139"]}: the one territory
    parser of `segments.territory` (codes checked, names resolved); AccountError with its French sentence."""
    try:
        return parse_territory_text(text)
    except TerritoryError as exc:
        raise AccountError(str(exc)) from exc


def partner_events(conn: Connection, partner_id: int, *, after_id: int = 0, since: Any = None,
                   limit: int = 100) -> list[Any]:
    """A partner's own submitted events (never another's), oldest first, received since a moment and after
    an id (for paging)."""
    events = TriggerEvent.__table__
    query = (select(events.c.id, events.c.external_id, events.c.type, events.c.siret, events.c.occurred_on,
                    events.c.status, events.c.received_at, events.c.planned)
             .where(events.c.partner_id == partner_id, events.c.id > after_id))
    if since is not None:
        query = query.where(events.c.received_at >= since)
    return conn.execute(query.order_by(events.c.id).limit(limit)).all()
