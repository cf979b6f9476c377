"""Watched feeds as data: register, list, pause, remove; what each fetch saw, in plain words.

A feed's state moves only after its body has been ingested and committed: a run that fails midway leaves
the previous ETag, hash and cursor in place, so the next run fetches and ingests the same body again
(the event store is idempotent on source + external id, so nothing is doubled either).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine

from orchestrator.core.durations import parse_duration
from store.models import Feed, Partner

FEEDS = Feed.__table__
FORMATS = ("partner-csv", "partner-json", "sirene", "bodacc", "bodacc-api", "sirene-api")
PARTNER_FORMATS = ("partner-csv", "partner-json")
# The built-in APIs' public endpoints (a feed may point elsewhere: a mirror, a test server).
DEFAULT_URLS = {
    "bodacc-api": "https://bodacc-datadila.opendatasoft.com/api/explore/v2.1/catalog/datasets/"
    "annonces-commerciales/records",
    "sirene-api": "https://api.insee.fr/api-sirene/3.11/siret",
}


class FeedError(ValueError):
    """A feed that cannot be registered as asked, said plainly."""


@dataclass(frozen=True)
class FeedRow:
    """One feed as read from the store."""
    id: int
    name: str
    format: str
    url: str
    partner: str | None
    every_seconds: int
    status: str
    token_env: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    cursor: dict[str, Any]
    next_due_at: dt.datetime | None
    last_fetch_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_outcome: str | None
    last_error: str | None
    failures: int
    events_total: int
    created_at: dt.datetime
    local: bool = False  # fetched from the local network (loopback, private addresses) on purpose

    def describe(self) -> dict[str, Any]:
        """The feed in plain words, for `declic feeds list` and `declic status` (no secret in it)."""
        if self.status == "paused":
            state = "en pause"
        elif self.failures:
            state = f"en échec ({self.failures} passage{'s' if self.failures > 1 else ''} de suite)"
        elif self.last_success_at is None:
            state = "jamais relevé"
        else:
            state = "à jour"
        return {
            "name": self.name,
            "format": self.format,
            "url": self.url,
            "partner": self.partner,
            "every": human_period(self.every_seconds),
            "state": state,
            "last_fetch": _when(self.last_fetch_at),
            "last_success": _when(self.last_success_at),
            "next_due": _when(self.next_due_at),
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "events": self.events_total,
            "token": f"${self.token_env}" if self.token_env else None,
            "local": bool(self.local),
        }


def _when(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_period(text: str) -> int:
    """Seconds in "30min", "6h", "1d", "2w" (the campaign units of `orchestrator.core.durations`; the old "30m" is
    still minutes here), "90s" or a bare number of seconds."""
    text = text.strip().lower()
    try:
        if text.isdigit() or (text.endswith("s") and text[:-1].isdigit()):
            value = int(text.removesuffix("s"))
        else:
            value = int(parse_duration(text, "période", dt.timedelta(days=366), old_m="min").total_seconds())
    except ValueError:
        raise FeedError(f"durée illisible : {text!r} (exemples : 30min, 6h, 1d)") from None
    if value < 60:
        raise FeedError("une période d'au moins une minute est attendue")
    return value


def human_period(seconds: int) -> str:
    """The period in words: "chaque jour", "toutes les 6 heures"."""
    for size, one, many, every in (
        (86_400, "jour", "jours", "tous les"),
        (3600, "heure", "heures", "toutes les"),
        (60, "minute", "minutes", "toutes les"),
    ):
        if seconds % size == 0:
            n = seconds // size
            return f"chaque {one}" if n == 1 else f"{every} {n} {many}"
    return f"toutes les {seconds} secondes"


def add_feed(
    engine: Engine,
    *,
    name: str,
    format: str,
    url: str | None = None,
    partner: str | None = None,
    every_seconds: int = 86_400,
    token_env: str | None = None,
    cursor: dict[str, Any] | None = None,
    local: bool = False,
    now: dt.datetime,
) -> FeedRow:
    """Register a feed at `now` (due at once); refuses an unknown format, a missing partner or a duplicate name.

    `local` lets the feed reach addresses of this machine or of a private network; by default only public
    addresses are fetched (see triggers.feeds.http)."""
    if format not in FORMATS:
        raise FeedError(f"format inconnu: {format} (au choix: {', '.join(FORMATS)})")
    if format in PARTNER_FORMATS and not partner:
        raise FeedError(f"un flux {format} appartient à un partenaire: --partner NOM")
    url = url or DEFAULT_URLS.get(format)
    if not url or not url.startswith(("http://", "https://")):
        raise FeedError("une adresse http(s) est attendue: --url URL")
    if token_env and not token_env.replace("_", "").isalnum():
        raise FeedError("--token-env attend le NOM d'une variable d'environnement, pas le jeton")
    with engine.begin() as conn:
        if conn.execute(select(FEEDS.c.id).where(FEEDS.c.name == name)).first():
            raise FeedError(f"un flux s'appelle déjà {name}")
        if partner:

            if not conn.execute(
                select(Partner.__table__.c.id).where(Partner.__table__.c.name == partner)
            ).first():
                raise FeedError(f"partenaire inconnu: {partner} (declic partners add {partner})")
        conn.execute(
            FEEDS.insert().values(
                name=name,
                format=format,
                url=url,
                partner=partner,
                every_seconds=every_seconds,
                status="active",
                token_env=token_env,
                cursor=cursor or {},
                next_due_at=now,
                failures=0,
                events_total=0,
                created_at=now,
                local=local,
            )
        )
    return get_feed(engine, name)


def _row(r) -> FeedRow:
    return FeedRow(**{k: getattr(r, k) for k in FeedRow.__dataclass_fields__})


def get_feed(engine: Engine, name: str) -> FeedRow:
    """The feed `name`; raises FeedError when there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(FEEDS).where(FEEDS.c.name == name)).first()
    if row is None:
        raise FeedError(f"aucun flux ne s'appelle {name}")
    return _row(row)


def list_feeds(engine: Engine) -> list[FeedRow]:
    """Every feed, by name."""
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(FEEDS).order_by(FEEDS.c.name))]


def due_feeds(engine: Engine, now: dt.datetime, only: str | None = None) -> list[FeedRow]:
    """Active feeds whose next fetch is due; `only` narrows to one format family ("bodacc", "sirene")."""
    stmt = (
        select(FEEDS)
        .where(FEEDS.c.status == "active", or_(FEEDS.c.next_due_at.is_(None), FEEDS.c.next_due_at <= now))
        .order_by(FEEDS.c.next_due_at, FEEDS.c.id)
    )
    if only:
        stmt = stmt.where(FEEDS.c.format.in_([only, f"{only}-api"]))
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(stmt)]


def claim_feed(engine: Engine, feed: FeedRow, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take a due feed for one run (two overlapping runs never fetch the same feed); False if taken."""
    due = (
        FEEDS.c.next_due_at.is_(None) if feed.next_due_at is None else FEEDS.c.next_due_at == feed.next_due_at
    )
    with engine.begin() as conn:
        taken = conn.execute(
            update(FEEDS)
            .where(FEEDS.c.id == feed.id, FEEDS.c.status == "active", due)
            .values(next_due_at=now + lease)
        )
    return taken.rowcount == 1


def set_status(engine: Engine, name: str, status: str, *, now: dt.datetime) -> None:
    """Pause or resume a feed (a resumed feed is due at once: at `now`)."""
    values: dict[str, Any] = {"status": status}
    if status == "active":
        values["next_due_at"] = now
    with engine.begin() as conn:
        if conn.execute(update(FEEDS).where(FEEDS.c.name == name).values(**values)).rowcount != 1:
            raise FeedError(f"aucun flux ne s'appelle {name}")


def set_local(engine: Engine, name: str, local: bool) -> None:
    """Allow (or forbid again) a feed to fetch from this machine or a private network."""
    with engine.begin() as conn:
        if conn.execute(update(FEEDS).where(FEEDS.c.name == name).values(local=local)).rowcount != 1:
            raise FeedError(f"aucun flux ne s'appelle {name}")


def remove_feed(engine: Engine, name: str) -> None:
    """Forget a feed (the events it brought stay)."""
    with engine.begin() as conn:
        if conn.execute(delete(FEEDS).where(FEEDS.c.name == name)).rowcount != 1:
            raise FeedError(f"aucun flux ne s'appelle {name}")


def record_success(
    engine: Engine,
    feed: FeedRow,
    *,
    now: dt.datetime,
    outcome: str,
    events: int = 0,
    etag: str | None = None,
    last_modified: str | None = None,
    content_hash: str | None = None,
    cursor: dict[str, Any] | None = None,
) -> None:
    """A run that ended well: move the validators, hash and cursor on; next fetch one period later."""
    values: dict[str, Any] = {
        "last_fetch_at": now,
        "last_success_at": now,
        "last_outcome": outcome,
        "last_error": None,
        "failures": 0,
        "next_due_at": now + dt.timedelta(seconds=feed.every_seconds),
        "events_total": FEEDS.c.events_total + events,
    }
    if etag is not None:
        values["etag"] = etag
    if last_modified is not None:
        values["last_modified"] = last_modified
    if content_hash is not None:
        values["content_hash"] = content_hash
    if cursor is not None:
        values["cursor"] = cursor
    with engine.begin() as conn:
        conn.execute(update(FEEDS).where(FEEDS.c.id == feed.id).values(**values))


def record_failure(
    engine: Engine, feed: FeedRow, *, now: dt.datetime, error: str, retry_at: dt.datetime | None = None
) -> None:
    """A run that failed: keep every validator as it was, say why, and come back soon (backoff)."""
    failures = feed.failures + 1
    # Come back at the next run at first, then less often (capped at the feed's own period).
    wait = min(dt.timedelta(minutes=5) * 2 ** (failures - 1), dt.timedelta(seconds=feed.every_seconds))
    next_due = max(retry_at or now, now + wait) if failures > 1 else (retry_at or now)
    with engine.begin() as conn:
        conn.execute(
            update(FEEDS)
            .where(FEEDS.c.id == feed.id)
            .values(
                last_fetch_at=now,
                last_outcome="échec",
                last_error=error,
                failures=failures,
                next_due_at=next_due,
            )
        )
