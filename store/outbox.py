"""The outbox: claim due messages under a lease, fence each handoff, record every outcome.

Several dispatchers may run at once: a claim is a row-level lock (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite serialises writers), and a send is recorded only while the claimer still holds
the lease, so a message is never handed over twice.

A message's life: planned -> claimed -> handed_over (the fence: past the point of no return) -> sent
(the peer's answer recorded), or failed / planned again for a retry. A dispatcher that dies between
the fence and the answer leaves a `handed_over` row: once its lease runs out it becomes `unknown`
(it may or may not have left), never `sent` and never sent again on its own. An operator resends
such messages deliberately (`declic messages resend --unknown`).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import namedtuple
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Text, cast, func, or_, select, type_coerce, update
from sqlalchemy.engine import Connection, Engine

from orchestrator.core.outcomes import Outcome, SendResult
from store.driver import insert_rows
from store.models import Business, Campaign, Feed, Interaction, Message, MessageEvent, Notice
from store.sql import insert_for
from store.suppressions import ADDRESS_KIND, suppressed_among

MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__
NOTICES = Notice.__table__
# Built once: `store.driver.insert_rows` compiles a statement once per statement object.
_HISTORY_INSERT = HISTORY.insert()

MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=6)


def backoff(attempts: int, retry_after: float | None = None,
            base: dt.timedelta = BACKOFF_BASE) -> dt.timedelta:
    """Exponential delay before the next try (30 s, 1 min, 2 min ... capped), or the peer's Retry-After."""
    delay = min(base * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    if retry_after is not None:
        delay = max(delay, dt.timedelta(seconds=retry_after))
    return delay


UNKNOWN_DETAIL = ("transmis sans réponse enregistrée (le processus d'envoi s'est arrêté) : "
                  "peut-être parti, jamais renvoyé sans décision d'un opérateur")


def release_expired(conn: Connection, now: dt.datetime) -> int:
    """Give back messages whose claimer died before any handoff; those it had handed over without
    recording the answer become `unknown` (their history says so). Returns the number given back.

    An `unknown` row keeps its lease owner: should that dispatcher still be alive and get its answer
    late, `record_results` still records it.
    """
    result = conn.execute(
        update(MESSAGES).where(MESSAGES.c.status == "claimed", MESSAGES.c.lease_until < now)
        .values(status="planned", lease_owner=None, lease_until=None)
    )
    mark_unknown(conn, now)
    return result.rowcount or 0


def mark_unknown(conn: Connection, now: dt.datetime) -> list[int]:
    """Messages past the fence whose lease ran out with no outcome recorded become `unknown`."""
    ids = conn.execute(
        update(MESSAGES).where(MESSAGES.c.status == "handed_over", MESSAGES.c.lease_until < now)
        .values(status="unknown", last_error=UNKNOWN_DETAIL).returning(MESSAGES.c.id)
    ).scalars().all()
    if ids:
        conn.execute(HISTORY.insert(), [{"message_id": i, "status": "unknown", "at": now, "detail": UNKNOWN_DETAIL}
                                        for i in ids])
    return list(ids)


def unknown_messages(conn: Connection, now: dt.datetime, campaign_id: int | None = None) -> list:
    """The messages whose fate is unknown (marking those whose lease ran out first), oldest handoff first:
    id, campaign, channel, recipient, handed over at."""
    mark_unknown(conn, now)
    stmt = (select(MESSAGES.c.id, MESSAGES.c.campaign_id, CAMPAIGNS.c.name.label("campaign"), MESSAGES.c.channel,
                   MESSAGES.c.recipient, MESSAGES.c.sent_at.label("handed_over_at"))
            .join(CAMPAIGNS, CAMPAIGNS.c.id == MESSAGES.c.campaign_id)
            .where(MESSAGES.c.status == "unknown").order_by(MESSAGES.c.sent_at, MESSAGES.c.id))
    if campaign_id is not None:
        stmt = stmt.where(MESSAGES.c.campaign_id == campaign_id)
    return conn.execute(stmt).all()


def resend_unknown(conn: Connection, message_ids: Sequence[int], now: dt.datetime, who: str) -> int:
    """Plan these `unknown` messages again, due now, as new sends (an operator's deliberate choice: the
    first copy may have arrived). The dispatcher checks opt-outs, closures and the campaign again."""
    ids = conn.execute(
        update(MESSAGES).where(MESSAGES.c.id.in_(list(message_ids)), MESSAGES.c.status == "unknown")
        .values(status="planned", due_at=now, sent_at=None, provider_id=None, lease_owner=None, lease_until=None,
                last_error=None).returning(MESSAGES.c.id)
    ).scalars().all()
    if ids:
        conn.execute(HISTORY.insert(), [{"message_id": i, "status": "resend", "at": now,
                                         "detail": f"renvoi décidé par {who}"} for i in ids])
    return len(ids)


def claim_due(conn: Connection, now: dt.datetime, limit: int, owner: str, lease: dt.timedelta,
              channels: Sequence[str] | None = None) -> list:
    """Claim up to `limit` due messages for `owner`; returns their rows."""
    # A paused campaign's messages wait in place: claiming them only to put them back would spin.
    paused = select(CAMPAIGNS.c.id).where(CAMPAIGNS.c.status == "paused")
    # A business that answered "pas le moment" gets nothing before its date: its messages wait in place too.
    paused_businesses = select(BUSINESS.c.id).where(BUSINESS.c.paused_until > now)
    due = (select(MESSAGES.c.id).where(MESSAGES.c.status == "planned", MESSAGES.c.due_at <= now,
                                       MESSAGES.c.campaign_id.not_in(paused),
                                       MESSAGES.c.business_id.not_in(paused_businesses))
           .order_by(MESSAGES.c.due_at, MESSAGES.c.id).limit(limit))
    if channels:
        due = due.where(MESSAGES.c.channel.in_(channels))
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    # The context comes back as JSON text (SQLite's own; PostgreSQL's cast to text, which psycopg would otherwise
    # decode with the json module) and is decoded by orjson, several times faster for a whole batch's contexts.
    as_text = cast if conn.dialect.name == "postgresql" else type_coerce
    columns = [c if c.name != "context" else as_text(c, Text).label("context") for c in MESSAGES.c]
    stmt = (update(MESSAGES).where(MESSAGES.c.id.in_(due.scalar_subquery()))
            .values(status="claimed", lease_owner=owner, lease_until=now + lease)
            .returning(*columns))
    at = _CONTEXT_AT
    rows = sorted((Claimed(*r[:at], _decoded(r[at]), *r[at + 1:]) for r in conn.execute(stmt)),
                  key=lambda r: (r.due_at, r.id))
    if rows:
        insert_rows(conn, _HISTORY_INSERT, [{"message_id": r.id, "status": "claimed", "at": now, "detail": owner}
                                            for r in rows])
    return rows


# A claimed message: the columns of `message`, in order, its context decoded.
Claimed = namedtuple("Claimed", [c.name for c in MESSAGES.c])  # type: ignore[misc]
_CONTEXT_AT = [c.name for c in MESSAGES.c].index("context")


def _decoded(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value  # a driver that decodes JSON itself (psycopg)
    # orjson reads an integer past 64 bits as a float; a context never holds one (ids, texts, dates), unlike a
    # partner's body (`web.api._decoded` checks for them).
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # what orjson does not read (NaN, lone surrogates): the json module
        return json.loads(value)


def blocked_at_send_time(conn: Connection, rows: Sequence) -> dict[int, str]:
    """Messages that must not leave any more: opt-out, closure, not to contact, campaign paused or ended."""
    if not rows:
        return {}
    business_ids = {r.business_id for r in rows}
    state = {i: (s, d) for i, s, d in conn.execute(
        select(BUSINESS.c.id, BUSINESS.c.state, BUSINESS.c.do_not_contact).where(BUSINESS.c.id.in_(business_ids)))}
    campaign_status = dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.status)
                                        .where(CAMPAIGNS.c.id.in_({r.campaign_id for r in rows}))).all())
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        if r.recipient:
            by_kind.setdefault(ADDRESS_KIND.get(r.channel, r.channel), []).append(r.recipient)
    suppressed = {(k, a) for k, addrs in by_kind.items() for a in suppressed_among(conn, k, addrs)}
    out = {}
    for r in rows:
        kind = ADDRESS_KIND.get(r.channel, r.channel)
        biz_state, do_not_contact = state.get(r.business_id, ("closed", True))
        address = (r.recipient or "").lower() if kind == "email" else r.recipient
        if (kind, address) in suppressed:
            out[r.id] = "opted_out"
        elif biz_state != "active":
            out[r.id] = "closed"
        elif do_not_contact:
            out[r.id] = "not_to_contact"
        elif campaign_status.get(r.campaign_id) != "active":
            out[r.id] = f"campaign_{campaign_status.get(r.campaign_id, 'missing')}"
    return out


def cancel(conn: Connection, reasons: dict[int, str], owner: str, now: dt.datetime) -> None:
    """Stop messages that must not leave, with the reason in their history.

    A paused campaign's messages go back to planned (they leave when it resumes); the others are cancelled.
    """
    for message_id, reason in reasons.items():
        status = "planned" if reason == "campaign_paused" else "cancelled"
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == message_id, MESSAGES.c.lease_owner == owner)
                     .values(status=status, lease_owner=None, lease_until=None, last_error=reason))
        conn.execute(HISTORY.insert(), {"message_id": message_id, "status": status, "at": now, "detail": reason})


class Fence:
    """The handoff fence of one batch: records a message as handed over only while `owner` holds its lease.

    The row turns `handed_over` and its history gains `handed_over` (given to the server or provider); the
    peer's answer turns it `sent` (or failed, or planned for a retry) afterwards (`record_results`). A row
    that stays `handed_over` tells of a send whose answer never came back (a crash at the point of no
    return): once its lease runs out it becomes `unknown` (`release_expired`), never `sent`.

    Each handoff is committed before the call returns, so a channel passes its point of no return only
    once its own row says handed over. Calls from several sending threads are grouped: the first waiting thread
    commits every handoff queued while the previous commit ran (group commit), so concurrent connections
    share the cost of a commit without any message leaving before its row is durable. One raw DBAPI
    connection is kept for the batch with two fixed statements: the ORM and Core overhead per message
    used to cost more than the SMTP exchange itself.
    """
    def __init__(self, engine: Engine, owner: str, clock: Callable[[], dt.datetime]) -> None:
        self.owner, self._clock = owner, clock
        self.handed_over: set[int] = set()
        self.error: Exception | None = None
        self._dbapi = engine.raw_connection()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._update = (f"UPDATE {MESSAGES.name} SET status = 'handed_over', sent_at = {mark}, "
                        f"rfc_message_id = {mark}, attempts = attempts + 1, last_error = NULL "
                        f"WHERE id = {mark} AND status = 'claimed' AND lease_owner = {mark}")
        self._history = (f"INSERT INTO {HISTORY.name} (message_id, status, at) "
                         f"VALUES ({mark}, 'handed_over', {mark})")
        # The dialect's own format (SQLite stores text): the same as every other write of these columns.
        at_type = MESSAGES.c.sent_at.type.dialect_impl(engine.dialect)
        self._bind_at = at_type.bind_processor(engine.dialect) or (lambda value: value)
        # A handed-over message the peer accepted turns `sent` with the next handoff's commit (no commit of its
        # own): a crash later in the batch leaves `unknown` only what was truly in flight. It gets the peer's id
        # there too, so `record_results` has nothing left to write for it.
        self._settle = (f"UPDATE {MESSAGES.name} SET status = 'sent', provider_id = {mark} "
                        f"WHERE id = {mark} AND status = 'handed_over' AND lease_owner = {mark}")
        self._settle_history = (f"INSERT INTO {HISTORY.name} (message_id, status, at, detail) "
                                f"VALUES ({mark}, 'sent', {mark}, {mark})")
        # PostgreSQL: the whole commit is one statement in autocommit (one round trip instead of one per
        # statement, BEGIN and COMMIT): the settlements and the handoffs of the group, each with its history row.
        self._one_statement = None
        if engine.dialect.name == "postgresql":
            self._one_statement = (
                f"WITH settle AS (UPDATE {MESSAGES.name} AS m SET status = 'sent', provider_id = given.pid "
                f"FROM unnest(%(settle_ids)s::bigint[], %(pids)s::text[]) AS given(id, pid) "
                f"WHERE m.id = given.id AND m.status = 'handed_over' AND m.lease_owner = %(owner)s "
                f"RETURNING m.id), "
                f"settle_history AS (INSERT INTO {HISTORY.name} (message_id, status, at, detail) "
                f"SELECT given.id, 'sent', %(at)s, given.detail FROM settle "
                f"JOIN unnest(%(settle_ids)s::bigint[], %(details)s::text[]) AS given(id, detail) "
                f"ON given.id = settle.id), "
                f"handoff AS (UPDATE {MESSAGES.name} AS m SET status = 'handed_over', sent_at = %(at)s, "
                f"rfc_message_id = given.rfc, attempts = m.attempts + 1, last_error = NULL "
                f"FROM unnest(%(ids)s::bigint[], %(rfcs)s::text[]) AS given(id, rfc) "
                f"WHERE m.id = given.id AND m.status = 'claimed' AND m.lease_owner = %(owner)s RETURNING m.id), "
                f"handoff_history AS (INSERT INTO {HISTORY.name} (message_id, status, at) "
                f"SELECT id, 'handed_over', %(at)s FROM handoff) "
                f"SELECT true, id FROM settle UNION ALL SELECT false, id FROM handoff")
            driver = self._dbapi.dbapi_connection
            self._autocommit = driver.autocommit
            driver.autocommit = True
        self.settled: set[int] = set()
        self._accepted: list[tuple[int, str, str | None]] = []  # (id, the peer's answer, its id for the message)
        self._cond = threading.Condition()
        self._queue: list[tuple[int, str]] = []
        self._answers: dict[int, bool] = {}
        self._committing = False

    def __call__(self, message_id: int, rfc_message_id: str) -> bool:
        """Record the send of one message; False when the lease was lost (the channel must abandon it)."""
        with self._cond:
            self._queue.append((message_id, rfc_message_id))
            while message_id not in self._answers:
                if self._committing:
                    self._cond.wait()
                    continue
                self._committing = True
                group, self._queue = self._queue, []
                accepted, self._accepted = self._accepted, []
                self._cond.release()
                try:
                    answers = self._commit(group, accepted)
                finally:
                    self._cond.acquire()
                    self._committing = False
                self._answers.update(answers)
                self._cond.notify_all()
            return self._answers.pop(message_id)

    def answered(self, result: SendResult) -> None:
        """The peer's answer to one message (a channel's `on_answer`): an accepted handoff is settled `sent`
        with the next commit; every other answer waits for `record_results`."""
        if result.outcome is Outcome.SENT and result.message_id in self.handed_over:
            with self._cond:
                self._accepted.append((result.message_id, result.detail, result.provider_id or None))

    def _commit(self, group: list[tuple[int, str]],
                accepted: Sequence[tuple[int, str, str | None]] = ()) -> dict[int, bool]:
        at = self._bind_at(self._clock())
        answers = {}
        settled = []
        cursor = self._dbapi.cursor()
        try:
            if self._one_statement is not None:
                return self._commit_one_statement(cursor, at, group, accepted)
            for message_id, detail, provider_id in accepted:
                cursor.execute(self._settle, (provider_id, message_id, self.owner))
                if cursor.rowcount == 1:
                    settled.append((message_id, at, detail))
            if settled:
                cursor.executemany(self._settle_history, settled)
            for message_id, rfc_message_id in group:
                cursor.execute(self._update, (at, rfc_message_id, message_id, self.owner))
                answers[message_id] = cursor.rowcount == 1
            won = [(message_id, at) for message_id, ok in answers.items() if ok]
            if won:
                cursor.executemany(self._history, won)
            self._dbapi.commit()
        except Exception as exc:  # the store is unreachable: nothing leaves; the lease gives them back later
            self.error = exc
            try:
                self._dbapi.rollback()
            except Exception:  # noqa: BLE001 (the connection is already gone)
                pass
            return {message_id: False for message_id, _ in group}
        finally:
            cursor.close()
        self.handed_over.update(message_id for message_id, ok in answers.items() if ok)
        self.settled.update(message_id for message_id, _at, _detail in settled)
        return answers

    def _commit_one_statement(self, cursor: Any, at: Any, group: Sequence[tuple[int, str]],
                              accepted: Sequence[tuple[int, str, str | None]]) -> dict[int, bool]:
        try:
            cursor.execute(self._one_statement, {
                "owner": self.owner, "at": at, "settle_ids": [i for i, _, _ in accepted],
                "details": [detail for _, detail, _ in accepted], "pids": [pid for _, _, pid in accepted],
                "ids": [i for i, _ in group],
                "rfcs": [rfc for _, rfc in group]})
            done = cursor.fetchall()
        except Exception as exc:  # the store is unreachable: nothing leaves; the lease gives them back later
            self.error = exc
            return {message_id: False for message_id, _ in group}
        won = {message_id for settled, message_id in done if not settled}
        self.handed_over.update(won)
        self.settled.update(message_id for settled, message_id in done if settled)
        return {message_id: message_id in won for message_id, _ in group}

    def close(self) -> None:
        """Give the connection back to the pool."""
        if self._one_statement is not None:
            try:
                self._dbapi.dbapi_connection.autocommit = self._autocommit
            except Exception:  # noqa: BLE001 (a connection that broke: the pool discards it)
                pass
        self._dbapi.close()


def record_results(conn: Connection, results: Sequence[SendResult], owner: str, now: dt.datetime,
                   handed_over: set[int], *, retry_base: dt.timedelta = BACKOFF_BASE,
                   settled: Collection[int] = ()) -> dict[str, int]:
    """Apply the channel's answers: confirm sends, schedule retries with backoff, fail permanent errors.

    `settled`: handed-over messages the fence already recorded `sent` during the batch (their history has it)."""
    counts = {"sent": 0, "retry": 0, "deferred": 0, "failed": 0, "abandoned": 0}
    attempts = dict(conn.execute(select(MESSAGES.c.id, MESSAGES.c.attempts)
                                 .where(MESSAGES.c.id.in_([r.message_id for r in results]))).all())
    confirmed = []  # handed over and accepted: only the peer's id to note, in one executemany
    for r in results:
        tries = attempts.get(r.message_id, 0)
        if r.outcome is Outcome.ABANDONED:
            counts["abandoned"] += 1
            continue
        if r.outcome is Outcome.SENT:
            counts["sent"] += 1
            if r.message_id in handed_over:
                confirmed.append({"mid": r.message_id, "pid": r.provider_id or None, "message_id": r.message_id,
                                  "status": "sent", "at": now, "detail": r.detail})
                continue
            # A channel without a handoff point (files, queues): the send is recorded now.
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == r.message_id, MESSAGES.c.lease_owner == owner)
                         .values(provider_id=r.provider_id or None, last_error=None, status="sent", sent_at=now,
                                 attempts=tries + 1))
            conn.execute(HISTORY.insert(), {"message_id": r.message_id, "status": "sent", "at": now,
                                            "detail": r.detail})
            continue
        if r.outcome is Outcome.DEFERRED:  # not tried: due again once the peer's pace or pause allows
            values = {"status": "planned", "due_at": now + dt.timedelta(seconds=max(r.retry_after or 0.0, 1.0)),
                      "lease_owner": None, "lease_until": None, "last_error": r.detail}
            status, key = "deferred", "deferred"
        else:
            tries = tries if r.message_id in handed_over else tries + 1
            if r.outcome is Outcome.TRANSIENT and tries < MAX_ATTEMPTS:
                values = {"status": "planned", "due_at": now + backoff(tries, r.retry_after, retry_base),
                          "attempts": tries, "lease_owner": None, "lease_until": None, "last_error": r.detail}
                status, key = "retry", "retry"
            else:
                values = {"status": "failed", "attempts": tries, "lease_owner": None, "lease_until": None,
                          "last_error": r.detail}
                status, key = "failed", "failed"
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == r.message_id, MESSAGES.c.lease_owner == owner)
                     .values(**values))
        conn.execute(HISTORY.insert(), {"message_id": r.message_id, "status": status, "at": now,
                                        "detail": r.detail})
        counts[key] += 1
    # What the fence settled is recorded already (status, the peer's id, history): only the rest is confirmed.
    confirmed = [c for c in confirmed if c["mid"] not in settled]
    if confirmed:
        # Only the fenced row turns sent (`unknown` too: a late answer of a dispatcher that was thought dead).
        # A delivery receipt may have come first: delivered stays delivered.
        # One driver call with plain tuples (SQLAlchemy's per-row parameter processing cost more than the update).
        conn.exec_driver_sql(_confirm_statement(conn.dialect.paramstyle),
                             [(c["pid"], c["mid"], owner) for c in confirmed])
        insert_rows(conn, _HISTORY_INSERT, [{k: c[k] for k in ("message_id", "status", "at", "detail")}
                                            for c in confirmed])
    return counts


@lru_cache(maxsize=4)
def _confirm_statement(paramstyle: str) -> str:
    """`record_results`' confirmation of fenced sends (provider id; delivered stays delivered), in the driver's
    parameter style: provider id, message id, lease owner."""
    mark = "?" if paramstyle == "qmark" else "%s"
    return (f"UPDATE {MESSAGES.name} SET provider_id = {mark}, last_error = NULL, "
            f"status = CASE WHEN status = 'delivered' THEN 'delivered' ELSE 'sent' END "
            f"WHERE id = {mark} AND lease_owner = {mark} "
            f"AND status IN ('handed_over', 'sent', 'unknown', 'delivered')")


def pause_on_errors(conn: Connection, campaign_ids: Sequence[int], now: dt.datetime, *, rate: float,
                    min_sample: int, window: dt.timedelta, zone: ZoneInfo) -> dict[int, str]:
    """Pause the active campaigns whose recent sends failed permanently too often; returns why, by campaign.

    Only permanent failures count (unknown address, refused content, a template that cannot render, or no
    try left): they say the list or the message is wrong, and more sends would only hurt the sender's
    reputation. A provider outage (4xx, refused connection, timeouts) is the backoff's business: pausing
    every campaign during one would leave each waiting for an operator. Errors before an automatic pause
    are not counted again once an operator resumes the campaign.
    """
    paused: dict[int, str] = {}
    candidates = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name, CAMPAIGNS.c.paused_at)
                              .where(CAMPAIGNS.c.id.in_(set(campaign_ids)), CAMPAIGNS.c.status == "active")).all()
    for campaign in candidates:
        recent = HISTORY.c.at >= now - window
        if campaign.paused_at is not None and campaign.paused_at >= now - window:
            recent = HISTORY.c.at > campaign.paused_at
        counts = dict(conn.execute(
            select(HISTORY.c.status, func.count())
            .select_from(HISTORY.join(MESSAGES, HISTORY.c.message_id == MESSAGES.c.id))
            .where(MESSAGES.c.campaign_id == campaign.id, recent, HISTORY.c.status.in_(("sent", "failed")))
            .group_by(HISTORY.c.status)).all())
        failed, tried = counts.get("failed", 0), counts.get("failed", 0) + counts.get("sent", 0)
        if tried < min_sample or failed < rate * tried:
            continue
        last_error = conn.execute(select(MESSAGES.c.last_error).where(
            MESSAGES.c.campaign_id == campaign.id, MESSAGES.c.status == "failed")
            .order_by(MESSAGES.c.id.desc()).limit(1)).scalar()
        reason = pause_reason(failed, tried, rate, window, now, last_error, campaign.name, zone)
        result = conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign.id, CAMPAIGNS.c.status == "active")
                              .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now))
        if result.rowcount:
            paused[campaign.id] = reason
    return paused


def pause_reason(failed: int, tried: int, rate: float, window: dt.timedelta, now: dt.datetime,
                 last_error: str | None, name: str, zone: ZoneInfo) -> str:
    """Why a campaign was paused, in plain French for the operator (the hour in `zone`, the deployment's)."""
    local = now.astimezone(zone)
    minutes = int(window.total_seconds() // 60)
    span = "la dernière heure" if minutes == 60 else f"les {minutes} dernières minutes"
    text = (f"Mise en pause automatique le {local:%d/%m/%Y à %H:%M} : {failed} envois sur {tried} ont échoué "
            f"sans espoir de nouvel essai dans {span} ({round(100 * failed / tried)}\u202f%, "
            f"le seuil est de {round(100 * rate)}\u202f%).")
    if last_error:
        text += f" Dernière erreur : {last_error}."
    return text + (f" Vérifiez la liste des destinataires ou le modèle du message, puis relancez la campagne "
                   f"avec « declic campaigns resume {name} ».")


def business_messages(conn: Connection, siret: str) -> dict | None:
    """Everything sent or planned to one business, with each message's history; None for an unknown SIRET.

    Answers "did this business receive it, when, on which channel?": its messages oldest first, each with
    its steps (planned, claimed, sent, retry, failed, cancelled, delivered, bounced...) and what the owner
    did with it (click, unsubscribe...), in time order.
    """
    interactions = Interaction.__table__
    business = conn.execute(select(BUSINESS).where(BUSINESS.c.siret == siret)).first()
    if business is None:
        return None
    rows = conn.execute(
        select(MESSAGES, CAMPAIGNS.c.name.label("campaign_name"), CAMPAIGNS.c.status.label("campaign_status"),
               CAMPAIGNS.c.paused_reason)
        .join(CAMPAIGNS, CAMPAIGNS.c.id == MESSAGES.c.campaign_id)
        .where(MESSAGES.c.business_id == business.id).order_by(MESSAGES.c.due_at, MESSAGES.c.id)).all()
    ids = [r.id for r in rows]
    steps: dict[int, list[dict]] = {i: [] for i in ids}
    if ids:
        for h in conn.execute(select(HISTORY).where(HISTORY.c.message_id.in_(ids))
                              .order_by(HISTORY.c.at, HISTORY.c.id)):
            steps[h.message_id].append({"at": h.at, "status": h.status, "detail": h.detail})
        for i in conn.execute(select(interactions).where(interactions.c.message_id.in_(ids))
                              .order_by(interactions.c.at, interactions.c.id)):
            steps[i.message_id].append({"at": i.at, "status": i.kind, "detail": None, "interaction": True})
    for history in steps.values():
        history.sort(key=lambda step: step["at"])  # stable: same-instant steps keep their recorded order
    addresses = {(ADDRESS_KIND.get(r.channel, r.channel), r.recipient) for r in rows if r.recipient}
    opted_out = [address for kind, address in sorted(addresses) if suppressed_among(conn, kind, [address])]
    return {
        "siret": business.siret, "name": business.name, "state": business.state,
        "do_not_contact": bool(business.do_not_contact), "opted_out": opted_out,
        "messages": [{
            "id": r.id, "campaign": r.campaign_name, "campaign_status": r.campaign_status,
            "paused_reason": r.paused_reason if r.campaign_status == "paused" else None, "step": r.step,
            "channel": r.channel, "template": r.template,
            "recipient": r.recipient, "status": r.status, "due_at": r.due_at, "sent_at": r.sent_at,
            "attempts": r.attempts, "last_error": r.last_error, "rfc_message_id": r.rfc_message_id,
            "provider_id": r.provider_id, "history": steps[r.id]} for r in rows],
    }


# --- notices to people who are not the business: operators' alerts (issue 21), ambassadors' callbacks ---


def queue_notices(conn: Connection, kind: str, cause_key: str, recipients: Sequence[str], subject: str, body: str,
                  now: dt.datetime, *, business_id: int | None = None, campaign_id: int | None = None) -> int:
    """One notice per address, due now; a cause already queued for an address queues nothing again (several
    automations, or a hook and an automation, may report the same cause; a request retried after a crash is the same
    request). Returns how many are new."""
    rows = [{"kind": kind, "cause_key": cause_key[:200], "recipient": address, "subject": subject, "body": body,
             "business_id": business_id, "campaign_id": campaign_id, "due_at": now, "status": "planned",
             "attempts": 0, "created_at": now}
            for address in dict.fromkeys(recipients)]
    if not rows:
        return 0
    result = conn.execute(insert_for(conn, NOTICES).on_conflict_do_nothing(
        index_elements=["cause_key", "recipient"]).returning(NOTICES.c.id), rows)
    return len(result.all())


def claim_notices(conn: Connection, now: dt.datetime, owner: str, lease: dt.timedelta, limit: int = 100) -> list:
    """Claim the due notices for `owner`, and those whose claimer's lease ran out (it died before recording
    the answer: a notice sent twice after a crash is better than a notice lost, so no handoff fence here)."""
    due = (select(NOTICES.c.id)
           .where(or_((NOTICES.c.status == "planned") & (NOTICES.c.due_at <= now),
                      (NOTICES.c.status == "claimed") & (NOTICES.c.lease_until < now)))
           .order_by(NOTICES.c.due_at, NOTICES.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return sorted(conn.execute(update(NOTICES).where(NOTICES.c.id.in_(due.scalar_subquery()))
                               .values(status="claimed", lease_owner=owner, lease_until=now + lease)
                               .returning(*NOTICES.c)).all(), key=lambda r: r.id)


def record_notice_results(conn: Connection, results: Sequence[SendResult], owner: str, now: dt.datetime,
                          retry_base: dt.timedelta = BACKOFF_BASE) -> dict[str, int]:
    """Apply the relay's answers to claimed notices: sent, due again after a backoff, or failed for good."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    attempts = dict(conn.execute(select(NOTICES.c.id, NOTICES.c.attempts)
                                 .where(NOTICES.c.id.in_([r.message_id for r in results]))).all())
    for r in results:
        tries = attempts.get(r.message_id, 0) + (r.outcome is not Outcome.DEFERRED)
        if r.outcome is Outcome.SENT:
            values, key = {"status": "sent", "sent_at": now, "last_error": None}, "sent"
        elif r.outcome in (Outcome.TRANSIENT, Outcome.DEFERRED) and tries < MAX_ATTEMPTS:
            values = {"status": "planned", "due_at": now + backoff(tries, r.retry_after, retry_base),
                      "last_error": r.detail}
            key = "retry"
        else:
            values, key = {"status": "failed", "last_error": r.detail}, "failed"
        conn.execute(update(NOTICES).where(NOTICES.c.id == r.message_id, NOTICES.c.lease_owner == owner)
                     .values(attempts=tries, lease_owner=None, lease_until=None, **values))
        counts[key] += 1
    return counts


def paused_campaign(conn: Connection, campaign_id: int):
    """What an alert about a paused campaign says (name, status, paused_reason, paused_at); None if unknown."""
    return conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name, CAMPAIGNS.c.status, CAMPAIGNS.c.paused_reason,
                               CAMPAIGNS.c.paused_at).where(CAMPAIGNS.c.id == campaign_id)).first()


def campaigns_paused_since(conn: Connection, since: dt.datetime) -> list:
    """(id, name) of the campaigns paused at or after `since` and still paused."""
    return conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name)
                        .where(CAMPAIGNS.c.status == "paused", CAMPAIGNS.c.paused_at >= since)
                        .order_by(CAMPAIGNS.c.name)).all()


def feed_outage(conn: Connection, name: str):
    """What an alert about a failing feed says (name, last_success_at, created_at, failures, last_error,
    last_fetch_at); None if there is no such feed."""
    feeds = Feed.__table__
    return conn.execute(select(feeds.c.name, feeds.c.last_success_at, feeds.c.created_at, feeds.c.failures,
                               feeds.c.last_error, feeds.c.last_fetch_at).where(feeds.c.name == name)).first()
