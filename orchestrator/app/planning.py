"""Planning: gather inputs in bulk, call the pure planner, store its decisions.

One `plan_batch` call does one slice of each kind of work, so that none blocks the others: a batch of new
trigger events, the later steps that fell due, and a slice of a scheduled campaign's occurrence. Plain
functions; the Prefect flow in `orchestrator.prefect.flows` only calls `plan_batch` until it returns nothing.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from orchestrator.app.bootstrap import App, unconfigured_channels
from orchestrator.app.collector import collector_paused
from orchestrator.app.privacy import guard_candidates
from orchestrator.app.run_tally import note_followups, note_plan
from orchestrator.core.planner import (
    DEFAULT_POLICY,
    CampaignRule,
    Candidate,
    GlobalHoldout,
    PlaceIndex,
    Plan,
    PlanCaches,
    Policy,
    plan,
    plan_answer_messages,
    plan_followups,
)
from orchestrator.core.schedule import due_occurrence
from store.followups import schedule_followups
from store.journeys import ambassador_views, offer_views
from store.planning import (
    active_campaigns,
    advance_occurrence,
    apply_followups,
    apply_plan,
    campaign_names,
    due_answer_messages,
    due_followups,
    eligible_among,
    encoded_contexts,
    global_holdouts,
    last_occurrence,
    max_cap_days,
    message_history,
    occurrence_key,
    occurrence_slice,
    pause_campaigns,
    pending_candidates,
    running_occurrence,
    start_occurrence,
    stored_enrollments,
    suppressed_for,
)
from store.rediagnostic import plan_rediagnostics

log = logging.getLogger("declic.planning")


def policy_from(app: App) -> Policy:
    """The global pressure caps: settings `cap_per_7_days` / `cap_per_30_days` when present, else 1 and 3; and the
    channels not configured, which the planner never chooses."""
    s = app.settings
    week = getattr(s, "cap_per_7_days", None)
    month = getattr(s, "cap_per_30_days", None)
    unavailable = frozenset(unconfigured_channels(s))  # not configured: the steps' fallbacks apply
    if week is None and month is None:
        return Policy(DEFAULT_POLICY.caps, unavailable)
    return Policy(((week if week is not None else 1, 7), (month if month is not None else 3, 30)), unavailable)


def _plan_events(app: App, conn, rules: list[CampaignRule], now: dt.datetime, limit: int, policy: Policy) -> Counter:
    return _in_parts(app, conn, _EventParts(app, rules, now, policy), limit)


# The ambassadors' index of the last batch: its places and shortlists serve the next batch while the registry is
# unchanged (rebuilt every batch, the shortlists cost 1-2.6 s of CPU over a 400,000-business occurrence).
_AMBASSADOR_INDEX: dict[str, PlaceIndex] = {}


def _ambassador_index(views: list) -> PlaceIndex:
    last = _AMBASSADOR_INDEX.get("last")
    index = _AMBASSADOR_INDEX["last"] = last.renewed(views) if last is not None else PlaceIndex(views)
    return index


class _Parts:
    """The inputs read once per batch, and what the parts of a batch decided but may not have stored yet: the
    ambassadors' introductions (their remaining capacity) and the businesses (read again on the caller's
    connection, which sees the uncommitted rows)."""

    def __init__(self, app: App, now: dt.datetime, policy: Policy):
        self.app, self.now, self.policy = app, now, policy
        self.read = False
        self.ambassadors, self.offers = PlaceIndex(()), PlaceIndex(())
        self.holdouts: list[GlobalHoldout] = []
        self.caches = PlanCaches()  # send slots and offers found by a part serve the next ones
        self.introduced: Counter = Counter()  # ambassador id -> introductions decided by this batch's parts
        self.decided: set[int] = set()  # business ids of this batch's parts
        self.done = False  # nothing left after the last part

    def batch_inputs(self, conn) -> None:
        """The ambassadors, offers and global control groups, read with the first part (nothing of the batch is
        stored then, so every connection sees the same)."""
        if not self.read:
            # Indexed by place once for the batch (the planner would index them again for every part).
            self.ambassadors = _ambassador_index(ambassador_views(conn, self.now, self.app.zone))
            self.offers = PlaceIndex(offer_views(conn))
            self.holdouts, self.read = global_holdouts(conn), True

    def decided_for(self, decided: Plan, business_ids: Iterable[int]) -> None:
        self.introduced.update(e.ambassador_id for e in decided.enrollments if e.ambassador_id is not None)
        self.decided.update(business_ids)


class _EventParts(_Parts):
    """New trigger events, part after part (by event id: the parts before may not be committed yet)."""

    def __init__(self, app: App, rules: list[CampaignRule], now: dt.datetime, policy: Policy):
        super().__init__(app, now, policy)
        self.rules, self.after = rules, 0

    def decide(self, conn, limit: int, settle: Callable[[], Connection]):
        app, now, rules = self.app, self.now, self.rules
        event_ids, candidates = pending_candidates(conn, limit, after=self.after)
        self.done = len(event_ids) < limit
        if not event_ids:
            return None
        self.after = event_ids[-1]
        ids = [c.business.id for c in candidates]
        if self.decided.intersection(ids):
            conn = settle()  # a business of an earlier part again: read what that part stored
        candidates = guard_candidates(app, conn, candidates)  # erased identities that came back: never contacted
        views = [c.business for c in candidates]
        self.batch_inputs(conn)
        today = now.astimezone(app.zone).date()
        triggered = [r for r in rules if r.spec.triggers]
        since = now - dt.timedelta(days=max_cap_days(rules, self.policy.caps))
        stored = stored_enrollments(conn, ids)
        decided = plan(candidates, triggered, now=now, zone=app.zone, enrolled=stored.keys,
                       suppressed=suppressed_for(conn, views),
                       eligible=eligible_among(conn, triggered, candidates, today),
                       history=message_history(conn, ids, since), policy=self.policy, ambassadors=self.ambassadors,
                       offers=self.offers, moments=stored.moments, global_holdouts=self.holdouts,
                       introduced=self.introduced, caches=self.caches)
        self.decided_for(decided, ids)
        return decided, event_ids, encoded_contexts(conn, decided)

    def store(self, conn, decision: tuple[Plan, list[int], dict[int, str] | None]) -> Counter:
        decided, event_ids, encoded = decision
        counts = Counter(apply_plan(conn, decided, event_ids, self.now, encoded))
        counts.update(f"skipped_{s.reason}" for s in decided.skipped)
        note_plan(conn, decided)
        return counts


def _plan_followups(conn, rules: list[CampaignRule], now: dt.datetime, limit: int, policy: Policy) -> Counter:
    multi = [r for r in rules if len(r.spec.steps) > 1]
    followups = due_followups(conn, multi, now, limit) if multi else []
    if not followups:
        return Counter()
    views = {f.business.id: f.business for f in followups}
    since = now - dt.timedelta(days=max_cap_days(rules, policy.caps))
    decisions = plan_followups(followups, multi, now=now, suppressed=suppressed_for(conn, views.values()),
                               history=message_history(conn, views, since), policy=policy)
    counts = Counter(apply_followups(conn, decisions, now))
    counts.update(f"stopped_{d.reason}" for d in decisions if d.reason)
    note_followups(conn, decisions)
    return counts


def _plan_answers(conn, rules: list[CampaignRule], now: dt.datetime, limit: int, policy: Policy) -> Counter:
    """The one message a "pas pour moi" answer asked for (after a pause, a peer's testimony), once it is due."""
    answers = due_answer_messages(conn, rules, now, limit)
    if not answers:
        return Counter()
    views = {a.business.id: a.business for a in answers}
    since = now - dt.timedelta(days=max_cap_days(rules, policy.caps))
    decisions = plan_answer_messages(answers, rules, now=now, suppressed=suppressed_for(conn, views.values()),
                                     history=message_history(conn, views, since), policy=policy)
    counts = Counter({f"answer_{k}": v for k, v in apply_followups(conn, decisions, now).items()})
    counts.update(f"stopped_{d.reason}" for d in decisions if d.reason)
    return counts


def _plan_occurrence(app: App, conn, rules: list[CampaignRule], now: dt.datetime, limit: int,
                     policy: Policy) -> Counter:
    """Start the due occurrences and plan one slice of `limit` businesses of the first one still running (on
    PostgreSQL in `OVERLAPPED_PARTS` parts, each read and planned while the one before is being stored)."""
    counts: Counter = Counter()
    for rule in rules:
        schedule = rule.spec.schedule
        if schedule is None:
            continue
        occurrence = running_occurrence(conn, rule.id)
        if occurrence is None:
            at, missed = due_occurrence(schedule.start, schedule.rrule, rule.spec.timezone(),
                                        last_occurrence(conn, rule.id), now)
            if at is None or (rule.spec.ends_on and at.astimezone(app.zone).date() > rule.spec.ends_on):
                continue
            start_occurrence(conn, rule.id, at, missed, now)
            counts["occurrences_started"] += 1
            counts["occurrences_missed"] += missed
            occurrence = running_occurrence(conn, rule.id)
        counts.update(_in_parts(app, conn, _OccurrenceParts(app, rule, occurrence, now, policy), limit))
        return counts  # one slice per call: triggered journeys get their turn between slices
    return counts


class _OccurrenceParts(_Parts):
    """A running occurrence, part after part: the businesses of its segment after the cursor, by id. The cursor
    and the enrolled count are carried from part to part, as the parts before may not be committed yet."""

    def __init__(self, app: App, rule: CampaignRule, occurrence, now: dt.datetime, policy: Policy):
        super().__init__(app, now, policy)
        self.rule = rule
        self.occurrence_id, self.cursor, self.enrolled = occurrence.id, occurrence.cursor, occurrence.enrolled
        at = occurrence.occurs_at
        self.at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        self.key = occurrence_key(self.at)
        self.today = now.astimezone(app.zone).date()

    def decide(self, conn, limit: int, settle: Callable[[], Connection]):
        app, rule, at, now = self.app, self.rule, self.at, self.now
        businesses = occurrence_slice(conn, rule.spec, self.cursor, limit, self.today)
        rate = rule.spec.schedule.rate_per_hour if rule.spec.schedule else None
        candidates = [
            Candidate(None, "scheduled", at.astimezone(app.zone).date(), b, trigger_key=self.key,
                      campaign_id=rule.id, at=at + dt.timedelta(hours=(self.enrolled + i) // rate) if rate else at)
            for i, b in enumerate(businesses)]
        candidates = guard_candidates(app, conn, candidates)
        ids = [b.id for b in businesses]  # after the cursor: never a business of an earlier part
        self.batch_inputs(conn)
        since = now - dt.timedelta(days=max_cap_days([rule], self.policy.caps))
        stored = stored_enrollments(conn, ids)  # one read: already enrolled, moments owned, recent contacts
        decided = plan(candidates, [rule], now=now, zone=app.zone, enrolled=stored.keys,
                       suppressed=suppressed_for(conn, businesses), history=message_history(conn, ids, since),
                       policy=self.policy, ambassadors=self.ambassadors, offers=self.offers,
                       recent=stored.recent(rule, at), moments=stored.moments,
                       global_holdouts=self.holdouts, introduced=self.introduced, caches=self.caches)
        self.decided_for(decided, ids)
        self.enrolled += len(decided.enrollments)
        self.cursor = ids[-1] if ids else self.cursor
        self.done = len(businesses) < limit
        return decided, self.cursor, self.done, encoded_contexts(conn, decided)

    def store(self, conn, decision: tuple[Plan, int, bool, dict[int, str] | None]) -> Counter:
        decided, cursor, done, encoded = decision
        applied = apply_plan(conn, decided, [], self.now, encoded)
        advance_occurrence(conn, self.occurrence_id, cursor, applied["enrolled"], done, self.now)
        counts = Counter({f"occurrence_{k}": v for k, v in applied.items() if k != "events"})
        counts.update(f"skipped_{s.reason}" for s in decided.skipped)
        counts["occurrences_done"] += int(done)
        note_plan(conn, decided)
        return counts


# Parts of a batch on PostgreSQL: the first part is read and planned alone and the last one stored alone, the
# others overlap.
OVERLAPPED_PARTS = 5


def _in_parts(app: App, conn, work, limit: int) -> Counter:
    """Decide and store one batch of `limit` (`work`: `_EventParts`, `_OccurrenceParts`).

    On PostgreSQL in `OVERLAPPED_PARTS` parts: each part is read and planned on a second connection while a
    helper thread stores the one before on `conn`, so that our CPU (the planner) and the server's (the rows and
    their indexes) overlap instead of taking turns. Every write is on `conn`, in the caller's one transaction: a
    crash or an error stores none of the batch (a later call plans it again, ON CONFLICT keeping each enrolment
    once). The second connection reads only committed rows, so `work` carries what the parts before decided
    (`_Parts`), and a part that meets a business of an earlier part waits for it to be stored and reads on
    `conn` (`settle`). The second connection's own writes (the privacy gate forgetting an erased identity's
    contacts) are committed after each part. SQLite, one writer at a time: the batch in one part, on `conn`."""
    if conn.dialect.name != "postgresql":
        decision = work.decide(conn, limit, lambda: conn)
        return work.store(conn, decision) if decision is not None else Counter()
    parts = min(OVERLAPPED_PARTS, limit)
    sizes = [limit // parts + (1 if n < limit % parts else 0) for n in range(parts)]
    counts: Counter = Counter()
    storing: Future | None = None

    def settle() -> Connection:
        """`conn` once the part being stored is stored."""
        nonlocal storing
        if storing is not None:
            stored, storing = storing, None
            counts.update(stored.result())
        return conn

    with app.engine.connect() as reader, ThreadPoolExecutor(max_workers=1,
                                                            thread_name_prefix="declic-plan-store") as helper:
        try:
            for size in sizes:
                decision = work.decide(reader, size, settle)
                reader.commit()
                settle()
                if decision is None:
                    break
                # In this thread's context: the run's tally (`note_plan`, a context variable) counts the part.
                storing = helper.submit(contextvars.copy_context().run, work.store, conn, decision)
                if work.done:
                    break
        finally:
            settle()  # also when deciding raised: `conn` is idle before it rolls back
    return counts


Work = Callable[[Connection, list[CampaignRule]], Counter]


def plan_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None) -> Counter:
    """Plan one batch of each kind of work; returns counts (empty when nothing was waiting).

    Failures are isolated by campaign: a campaign whose spec no longer validates, or whose planning raises,
    is paused with the reason (`paused_campaigns` in the counts) and the others are planned as usual.
    """
    with collector_paused():
        return _plan_batch(app, now=now, limit=limit)


def _plan_batch(app: App, *, now: dt.datetime | None, limit: int | None) -> Counter:
    now = (now or app.clock()).astimezone(dt.UTC)
    limit = limit or app.settings.plan_batch_size
    policy = policy_from(app)
    counts: Counter = Counter()
    broken: dict[int, Exception] = {}
    with app.engine.connect() as conn:
        rules = active_campaigns(conn, broken)
    if broken:
        counts["paused_campaigns"] += _pause_broken(app, broken, now)
    for work in (lambda conn, subset: _plan_events(app, conn, subset, now, limit, policy),
                 lambda conn, subset: _plan_followups(conn, subset, now, limit, policy),
                 lambda conn, subset: _plan_answers(conn, subset, now, limit, policy),
                 lambda conn, subset: _plan_occurrence(app, conn, subset, now, limit, policy)):
        done, rules = _isolated(app, work, rules, now)
        counts.update(done)

    with app.engine.begin() as conn:  # 30- and 90-day follow-ups of new callbacks, enrolments and meetings
        counts["followup_tasks"] += schedule_followups(conn, now, app.zone)

    with app.engine.begin() as conn:  # the diagnostic offered again: after a conversion, to the control sample
        counts.update(plan_rediagnostics(conn, now, unavailable=policy.unavailable))
    return +counts


def _isolated(app: App, work: Work, rules: list[CampaignRule], now: dt.datetime
              ) -> tuple[Counter, list[CampaignRule]]:
    """Run `work` over `rules` in one transaction. When it raises, find the campaigns that make it fail on
    their own, pause them with the reason, and run it again without them; returns the counts and the rules
    still active. An error that no single campaign explains (the store unreachable...) is raised as is."""
    paused = 0
    while True:
        try:
            with app.engine.begin() as conn:
                counts = work(conn, rules)
        except Exception:
            culprits = _culprits(app, work, rules)
            if not culprits:
                raise
            paused += _pause_broken(app, culprits, now)
            rules = [r for r in rules if r.id not in culprits]
            continue
        if paused:
            counts["paused_campaigns"] += paused
        return counts, rules


def _culprits(app: App, work: Work, rules: list[CampaignRule]) -> dict[int, Exception]:
    """The campaigns whose work fails on its own, tried one by one in transactions rolled back."""
    def failure(subset: list[CampaignRule]) -> Exception | None:
        with app.engine.connect() as conn:
            transaction = conn.begin()
            try:
                work(conn, subset)
            except Exception as exc:  # noqa: BLE001 (any error is this subset's: that is the question asked)
                return exc
            finally:
                transaction.rollback()
        return None

    if failure([]) is not None:
        return {}  # the work fails without any campaign: not a campaign's fault
    return {rule.id: exc for rule in rules if (exc := failure([rule])) is not None}


def _pause_broken(app: App, errors: dict[int, Exception], now: dt.datetime) -> int:
    """Pause the campaigns that could not be planned, each with its reason in plain French."""
    with app.engine.begin() as conn:
        names = campaign_names(conn, errors)
        reasons = {i: planning_pause_reason(exc, now, names.get(i, str(i)), app.zone) for i, exc in errors.items()}
        paused = pause_campaigns(conn, reasons, now)
    for campaign_id, name in paused.items():
        log.warning("campagne %s mise en pause : %s", name, reasons[campaign_id])
    return len(paused)


def planning_pause_reason(exc: Exception, now: dt.datetime, name: str, zone: ZoneInfo) -> str:
    """Why the planner paused a campaign, in plain French for the operator."""
    local = now.astimezone(zone)
    return (f"Mise en pause automatique le {local:%d/%m/%Y à %H:%M} : la planification de cette campagne a "
            f"échoué ({describe_error(exc)}). Les autres campagnes continuent. Corrigez la campagne (tableau de "
            f"bord ou « declic campaigns apply »), puis relancez-la avec « declic campaigns resume {name} ».")


def describe_error(exc: Exception, limit: int = 300) -> str:
    """An error in a few words: a spec's first errors by field, else the exception's type and message."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or 'campagne'} : {e['msg'].removeprefix('Value error, ')}"
                 for e in exc.errors()[:3]]
        text = "campagne invalide, " + " ; ".join(parts)
    elif isinstance(exc, OverflowError):
        text = f"une durée ou une date sort des limites ({exc})"
    else:
        text = f"{type(exc).__name__} : {exc}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plan_all(app: App, *, now: dt.datetime | None = None, max_batches: int = 10_000) -> Counter:
    """Plan until nothing is waiting: new events, due later steps, due scheduled occurrences."""
    total: Counter = Counter()
    for _ in range(max_batches):
        counts = plan_batch(app, now=now)
        if not counts:
            break
        total.update(counts)
    return total
