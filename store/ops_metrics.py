"""Operations figures read from the store: what the run reports, the alerts and `/metrics` show.

A few aggregate queries (GROUP BY on indexed columns), cheap enough to run at every Prometheus scrape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import case, func, inspect, select
from sqlalchemy.engine import Connection

from store.models import Business, Campaign, Enrollment, Feed, Message, MessageEvent, Partner, TriggerEvent
from store.report import ROLLUP

CAMPAIGNS = Campaign.__table__
MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
EVENTS = TriggerEvent.__table__
ENROLLMENTS = Enrollment.__table__
PARTNERS = Partner.__table__
FEEDS = Feed.__table__
BUSINESSES = Business.__table__


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives naive datetimes back; every stored time is UTC.
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def campaign_names(conn: Connection, campaign_ids: Iterable[int]) -> dict[int, str]:
    """Campaign names by id."""
    ids = sorted({i for i in campaign_ids if i is not None})
    if not ids:
        return {}
    return dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name).where(CAMPAIGNS.c.id.in_(ids))).all())


def paused_campaigns(conn: Connection, since: dt.datetime | None = None) -> list[tuple[str, str | None]]:
    """(name, reason) of the paused campaigns, by name; only those paused at or after `since` when given."""
    query = select(CAMPAIGNS.c.name, CAMPAIGNS.c.paused_reason).where(CAMPAIGNS.c.status == "paused")
    if since is not None:
        query = query.where(CAMPAIGNS.c.paused_at >= since)
    return [(name, reason) for name, reason in conn.execute(query.order_by(CAMPAIGNS.c.name))]


def rollup_summary(conn: Connection) -> list[tuple[str, int, dt.datetime | None]]:
    """(campaign name, rollup rows, refreshed at) of every rolled-up campaign."""
    rows = conn.execute(select(CAMPAIGNS.c.name, func.count(), func.max(ROLLUP.c.refreshed_at))
                        .select_from(ROLLUP.join(CAMPAIGNS, CAMPAIGNS.c.id == ROLLUP.c.campaign_id))
                        .group_by(CAMPAIGNS.c.name).order_by(CAMPAIGNS.c.name)).all()
    return [(name, n, _aware(at)) for name, n, at in rows]


def feed_marks(conn: Connection) -> dict[str, tuple[dt.datetime, dt.datetime | None]]:
    """Per feed: (last success, or creation when it never succeeded; last fetch)."""
    rows = conn.execute(select(FEEDS.c.name, FEEDS.c.last_success_at, FEEDS.c.created_at, FEEDS.c.last_fetch_at))
    return {name: (_aware(success or created), _aware(fetched)) for name, success, created, fetched in rows}


@dataclass
class OpsFigures:
    """Everything `/metrics` shows, read in one go."""
    partner_events: dict[tuple[str, str], int] = field(default_factory=dict)  # (partner, status) -> events
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, channel) -> messages
    oldest_due_seconds: dict[str, float] = field(default_factory=dict)  # channel -> age of the oldest due
    sends: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, outcome) -> history steps
    events_waiting: int = 0  # trigger events the planner has not looked at yet
    oldest_waiting_seconds: float = 0.0  # age of the oldest of them
    planning_lag_seconds: list[float] = field(default_factory=list)  # received -> enrolled, recent enrollments
    feeds: dict[str, tuple[float | None, int, str]] = field(default_factory=dict)  # name -> (age, failures, status)


SEND_OUTCOMES = ("sent", "retry", "deferred", "failed", "cancelled", "delivered", "bounced")


def ops_figures(conn: Connection, now: dt.datetime, lag_window: dt.timedelta = dt.timedelta(hours=1)
                ) -> OpsFigures:
    """The store's operations figures at `now` (aware UTC)."""
    out = OpsFigures()
    names = dict(conn.execute(select(PARTNERS.c.id, PARTNERS.c.name)).all())
    for source, status, n in conn.execute(
            select(EVENTS.c.source, EVENTS.c.status, func.count())
            .where(EVENTS.c.source.like("partner:%")).group_by(EVENTS.c.source, EVENTS.c.status)):
        partner = source.removeprefix("partner:")
        name = names.get(int(partner), partner) if partner.isdigit() else partner
        out.partner_events[(name, status)] = out.partner_events.get((name, status), 0) + n
    out.outbox = {(status, channel): n for status, channel, n in conn.execute(
        select(MESSAGES.c.status, MESSAGES.c.channel, func.count())
        .where(MESSAGES.c.status.in_(("planned", "claimed", "failed")))
        .group_by(MESSAGES.c.status, MESSAGES.c.channel))}
    for channel, oldest in conn.execute(
            select(MESSAGES.c.channel, func.min(MESSAGES.c.due_at))
            .where(MESSAGES.c.status == "planned", MESSAGES.c.due_at <= now).group_by(MESSAGES.c.channel)):
        out.oldest_due_seconds[channel] = max(0.0, (now - _aware(oldest)).total_seconds())
    out.sends = {(channel, status): n for channel, status, n in conn.execute(
        select(MESSAGES.c.channel, HISTORY.c.status, func.count())
        .select_from(HISTORY.join(MESSAGES, MESSAGES.c.id == HISTORY.c.message_id))
        .where(HISTORY.c.status.in_(SEND_OUTCOMES)).group_by(MESSAGES.c.channel, HISTORY.c.status))}
    waiting, oldest = conn.execute(select(func.count(), func.min(EVENTS.c.received_at))
                                   .where(EVENTS.c.planned.is_(False))).one()
    out.events_waiting = waiting
    out.oldest_waiting_seconds = max(0.0, (now - _aware(oldest)).total_seconds()) if oldest else 0.0
    out.planning_lag_seconds = [
        max(0.0, (_aware(enrolled) - _aware(received)).total_seconds()) for received, enrolled in conn.execute(
            select(EVENTS.c.received_at, ENROLLMENTS.c.enrolled_at)
            .join(EVENTS, EVENTS.c.id == ENROLLMENTS.c.trigger_event_id)
            .where(ENROLLMENTS.c.enrolled_at >= now - lag_window))]
    for name, success, created, failures, status in conn.execute(
            select(FEEDS.c.name, FEEDS.c.last_success_at, FEEDS.c.created_at, FEEDS.c.failures, FEEDS.c.status)):
        age = (now - _aware(success or created)).total_seconds() if (success or created) else None
        out.feeds[name] = (age, failures, status)
    return out


# `declic status` and the demo's summary.


def outbox_by_channel(conn: Connection, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Per channel: queued (planned, not yet due), due, claimed, failed, sent in the last 24 hours."""
    m = MESSAGES.c
    planned = m.status == "planned"
    stmt = select(
        m.channel,
        func.sum(case((planned & (m.due_at > now), 1), else_=0)),
        func.sum(case((planned & (m.due_at <= now), 1), else_=0)),
        func.sum(case((m.status == "claimed", 1), else_=0)),
        func.sum(case((m.status == "failed", 1), else_=0)),
        func.sum(case(((m.status == "sent") & (m.sent_at >= now - dt.timedelta(days=1)), 1), else_=0)),
    ).group_by(m.channel).order_by(m.channel)
    keys = ("queued", "due", "claimed", "failed", "sent_24h")
    return {row[0]: {k: int(v or 0) for k, v in zip(keys, row[1:], strict=True)} for row in conn.execute(stmt)}


def unknown_by_campaign(conn: Connection, now: dt.datetime) -> dict[str, int]:
    """Messages whose fate is unknown (handed over, no answer recorded: the dispatcher stopped), by campaign;
    a handed-over message whose lease ran out counts even before a dispatcher marks it."""
    m, c = MESSAGES.c, CAMPAIGNS.c
    lapsed = (m.status == "handed_over") & (m.lease_until < now)
    stmt = (select(c.name, func.count()).join(CAMPAIGNS, c.id == m.campaign_id)
            .where((m.status == "unknown") | lapsed).group_by(c.name).order_by(c.name))
    return {name: int(count) for name, count in conn.execute(stmt).all()}


def has_feeds_table(conn: Connection) -> bool:
    """Whether this store has the feeds table yet (a database not upgraded since feeds came has none)."""
    return FEEDS.name in inspect(conn).get_table_names()


def last_due_at(conn: Connection) -> dt.datetime | None:
    """The latest due time of any message (None: no message)."""
    return conn.execute(select(func.max(MESSAGES.c.due_at))).scalar()


def sent_by_family(conn: Connection) -> list[tuple[str | None, int]]:
    """(trade family or None, messages sent), most first."""
    m, b = MESSAGES.c, BUSINESSES.c
    rows = conn.execute(select(b.metier_family, func.count())
                        .select_from(MESSAGES.join(BUSINESSES, b.id == m.business_id))
                        .where(m.status == "sent").group_by(b.metier_family)).all()
    return [(family, n) for family, n in sorted(rows, key=lambda r: -r[1])]


def store_answers(conn: Connection) -> None:
    """Ask the store the simplest question (the liveness check of `/healthz`): raises when it cannot answer."""
    conn.execute(select(1)).scalar_one()
