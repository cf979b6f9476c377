"""Exactly once through the real dispatcher: an SMTP server down for a while, an SMS provider that throttles,
a campaign that pauses itself on permanent failures, opt-out and closure checked again at send time, and
the history an operator reads with `declic messages show SIRET`. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

import orchestrator.app.dispatch as dispatch
from bench.bench_email import seed_outbox
from integrations.loopback import LoopbackPeer, Reply, octopush_ok
from integrations.smtp_sink import SmtpSink, free_port
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all, dispatch_batch
from orchestrator.cli.main import app as cli
from store.admin import set_campaign_status
from store.models import Business, Campaign, Message, MessageEvent, Suppression
from tests.utils.outreach import business, campaign, context, enrol, use_octopush_peer
from tests.utils.waiting import Progress

MESSAGES = Message.__table__
EVENTS = MessageEvent.__table__
CAMPAIGNS = Campaign.__table__
BUSINESS = Business.__table__
# A Tuesday morning, inside every send window.
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def running_clock(start: dt.datetime):
    """A clock that starts at `start` and runs with real time (backoff delays are real waits)."""
    origin = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - origin)


def history(engine, message_id: int) -> list:
    with engine.connect() as conn:
        return conn.execute(select(EVENTS).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)).all()


def statuses(engine) -> Counter:
    with engine.connect() as conn:
        return Counter(conn.execute(select(MESSAGES.c.status)).scalars())


# --- e-mail: the server refuses connections for a while, then comes back ---

# The schedule scaled down 120 times (first retry after 0.25 s instead of 30 s, then 0.5, 1, 2, 4...). The outage
# ends when the dispatcher has been refused five times on the first message, not at a fixed time: on a loaded
# machine a first dispatch can take longer than a fixed outage, and the tries the test is about never happen.
BASE = 0.25
REFUSED = 5


class WhenThen(threading.Thread):
    """Beside the dispatcher: polls `ready()` every 50 ms and runs `then()` once it holds. What the test's peer
    does next follows what the dispatcher has done, not the wall clock. An error in either is kept for the test."""

    def __init__(self, ready, then) -> None:
        super().__init__(daemon=True)
        self.ready, self.then = ready, then
        self.done, self.stopped = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopped.wait(0.05):
                if self.ready():
                    self.then()
                    self.done.set()
                    return
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread by check())
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


def retried(engine, first_only: bool = False) -> int:
    """Retries recorded: of the first message, or the number of messages retried at least once."""
    with engine.connect() as conn:
        query = select(func.count(EVENTS.c.message_id.distinct())).where(EVENTS.c.status == "retry")
        if first_only:
            first = select(func.min(MESSAGES.c.id)).scalar_subquery()
            query = select(func.count()).select_from(EVENTS).where(EVENTS.c.status == "retry",
                                                                   EVENTS.c.message_id == first)
        return conn.execute(query).scalar()


def test_smtp_server_down_then_back_every_message_delivered_once(settings, engine):
    seed_outbox(engine, 120, now=NOW)
    port = free_port()  # nothing listens there until the first message was refused REFUSED times
    app = bootstrap(settings.model_copy(update={"smtp_port": port, "retry_base_seconds": BASE, "smtp_timeout": 2.0}),
                    clock=running_clock(NOW))
    sink = SmtpSink(port=port, keep=False)
    back: list[dt.datetime] = []
    comes_back = WhenThen(lambda: retried(engine, first_only=True) >= REFUSED,
                          lambda: (sink.start(), back.append(app.clock())))
    comes_back.start()
    total: Counter = Counter()
    # The longest quiet time is the last backoff gap (a few seconds): a minute without any try is a hang.
    progress = Progress(stall=60, what="dispatch across the outage (counts)")
    try:
        while total["sent"] < 120:
            comes_back.check()
            total.update(dispatch_all(app))
            progress.seen(dict(total))
            time.sleep(0.05)
    finally:
        comes_back.stop()
        app.close()
        sink.stop()
    comes_back.check()
    assert total["sent"] == 120 and total["failed"] == 0
    assert len(sink.by_message_id) == 120 and sink.duplicates() == {}
    assert statuses(engine) == Counter({"sent": 120})
    with engine.connect() as conn:
        message_id = conn.execute(select(MESSAGES.c.id).order_by(MESSAGES.c.id).limit(1)).scalar()
    steps = history(engine, message_id)
    retries = [s for s in steps if s.status == "retry"]
    assert len(retries) >= REFUSED and all("injoignable" in s.detail for s in retries)
    # Each try is one claim: every one but the last was refused, the last (after the server came back) sent.
    tries = [s.at for s in steps if s.status == "claimed"]
    assert back and len(tries) == len(retries) + 1 and steps[-1].status == "sent"
    # Exponential backoff: each try waited at least twice as long as the one before (0.25 s, 0.5 s, 1 s...).
    gaps = [(b - a).total_seconds() for a, b in zip(tries, tries[1:], strict=False)]
    assert all(gap >= BASE * 2 ** k - 0.01 for k, gap in enumerate(gaps)), gaps


def test_a_server_that_answers_451_for_a_while_then_accepts(settings, engine, smtp_sink):
    seed_outbox(engine, 40, now=NOW)
    app = bootstrap(settings.model_copy(update={"retry_base_seconds": 0.5}), clock=running_clock(NOW))
    # Every RCPT answered 451 until each of the 40 messages has been refused once (however long that takes).
    smtp_sink.refuse_for(float("inf"))
    accepts = WhenThen(lambda: retried(engine) >= 40, lambda: smtp_sink.refuse_for(0))
    accepts.start()
    total: Counter = Counter()
    progress = Progress(stall=60, what="dispatch while the server answers 451 (counts)")
    try:
        while total["sent"] < 40:
            accepts.check()
            total.update(dispatch_all(app))
            progress.seen(dict(total))
            time.sleep(0.1)
    finally:
        accepts.stop()
        app.close()
    accepts.check()
    assert accepts.done.is_set()  # nothing went through before every message had been refused
    assert total["sent"] == 40 and total["retry"] >= 40
    assert len(smtp_sink.by_message_id) == 40 and smtp_sink.duplicates() == {}


# --- a campaign pauses itself above the error threshold ---


def test_a_campaign_pauses_itself_on_permanent_failures_and_says_why(settings, engine, smtp_sink, env_settings):
    seed_outbox(engine, 100, now=NOW)
    with engine.connect() as conn:
        rows = conn.execute(select(MESSAGES.c.id, MESSAGES.c.recipient).order_by(MESSAGES.c.id)).all()
        name = conn.execute(select(CAMPAIGNS.c.name)).scalar()
    for r in rows[:40:2]:  # one address in two of the first batches does not exist
        smtp_sink.reject_rcpt[r.recipient] = "550 5.1.1 <unknown>: Recipient address rejected: User unknown"
    policy = {"dispatch_batch_size": 20, "pause_error_rate": 0.3, "pause_min_sample": 20}
    app = bootstrap(settings.model_copy(update=policy), clock=lambda: NOW)
    try:
        counts = dispatch_all(app)  # stops by itself: a paused campaign's messages are not claimed again
    finally:
        app.close()
    assert counts["paused_campaigns"] == 1 and counts["failed"] == 10 and counts["sent"] == 10, \
        (counts, statuses(engine))
    # The next batch, claimed while the first was on the wire, was stopped by the check at send time.
    assert counts["cancelled_campaign_paused"] == 20
    with engine.connect() as conn:
        paused = conn.execute(select(CAMPAIGNS)).one()
    assert paused.status == "paused" and paused.paused_at == NOW
    assert paused.paused_reason.startswith("Mise en pause automatique le 01/12/2026 à 10:30 : 10 envois sur 20")
    assert "50\u202f%" in paused.paused_reason and "adresse inconnue" in paused.paused_reason
    assert f"declic campaigns resume {name}" in paused.paused_reason
    assert statuses(engine) == Counter({"planned": 80, "sent": 10, "failed": 10})
    with engine.connect() as conn:  # the operator asks about a business still waiting
        siret = conn.execute(select(BUSINESS.c.siret).join(MESSAGES, MESSAGES.c.business_id == BUSINESS.c.id)
                             .where(MESSAGES.c.id == rows[-1].id)).scalar()
    shown = json.loads(CliRunner().invoke(cli, ["messages", "show", siret, "--json"]).output)
    assert shown["answer"] == f"Reçu : pas encore ; la campagne « {name} » est en pause : {paused.paused_reason}"

    # The operator fixes the list and resumes: the failures judged already do not pause it again.
    assert set_campaign_status(engine, name, "active", now=NOW)
    smtp_sink.reject_rcpt.clear()
    later = bootstrap(settings.model_copy(update=policy), clock=lambda: NOW + dt.timedelta(minutes=5))
    try:
        assert dispatch_all(later)["sent"] == 80
    finally:
        later.close()
    assert statuses(engine) == Counter({"sent": 90, "failed": 10})
    assert smtp_sink.duplicates() == {}


def test_transient_failures_never_pause_a_campaign(settings, engine):
    seed_outbox(engine, 60, now=NOW)
    app = bootstrap(settings.model_copy(update={"smtp_port": free_port(), "pause_min_sample": 10}), clock=lambda: NOW)
    try:
        counts = dispatch_all(app)
    finally:
        app.close()
    assert counts["retry"] == 60 and "paused_campaigns" not in counts
    with engine.connect() as conn:
        assert conn.execute(select(CAMPAIGNS.c.status)).scalar() == "active"


# --- SMS: 429 twice (exponential backoff), then 200; a 400 is permanent ---


@pytest.fixture
def provider(settings) -> Iterator[LoopbackPeer]:
    """An Octopush-like provider on loopback, configured on the test's settings."""
    with LoopbackPeer(octopush_ok) as peer:
        use_octopush_peer(settings, peer)
        yield peer


def sms_message(engine, phone: str, name: str) -> tuple[int, int, str]:
    """One planned SMS; returns (message id, business id, SIRET)."""
    campaign_id = campaign(engine, name, "35")
    with engine.begin() as conn:
        business_id = business(conn, "35238", email=None)
        conn.execute(update(BUSINESS).where(BUSINESS.c.id == business_id).values(phone=phone))
        _, message_id = enrol(conn, campaign_id, business_id, status="planned", channel="sms", at=NOW, ctx=context())
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == message_id).values(recipient=phone))
        siret = conn.execute(select(BUSINESS.c.siret).where(BUSINESS.c.id == business_id)).scalar()
    return message_id, business_id, siret


def row(engine, message_id: int):
    with engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()


def test_sms_429_twice_backs_off_exponentially_then_200_delivers_once(settings, engine, provider):
    message_id, _, _ = sms_message(engine, "+33612345678", "sms-429")
    provider.then(Reply(429, {"code": 429, "message": "Too many requests"}),
                  Reply(429, {"code": 429, "message": "Too many requests"}))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        assert dispatch_batch(app, now=NOW)["retry"] == 1
        first = row(engine, message_id)
        assert first.status == "planned" and first.due_at == NOW + dt.timedelta(seconds=30)
        assert dispatch_batch(app, now=first.due_at)["retry"] == 1
        second = row(engine, message_id)
        assert second.due_at == first.due_at + dt.timedelta(seconds=60)  # twice the first delay
        assert not dispatch_batch(app, now=second.due_at - dt.timedelta(seconds=1))  # not due yet
        assert dispatch_batch(app, now=second.due_at)["sent"] == 1
        assert not dispatch_batch(app, now=second.due_at + dt.timedelta(days=1))  # nothing left to send
    finally:
        app.close()
    sent = row(engine, message_id)
    assert sent.status == "sent" and sent.attempts == 3 and sent.last_error is None
    bodies = [r.json() for r in provider.received]
    assert len(bodies) == 3 and len({b["request_id"] for b in bodies}) == 1  # one message, retried
    assert [s.status for s in history(engine, message_id)] == [
        "claimed", "handed_over", "retry", "claimed", "handed_over", "retry", "claimed", "handed_over", "sent"]


def test_sms_400_is_permanent_recorded_and_shown(settings, engine, provider, env_settings):
    message_id, _, siret = sms_message(engine, "+33781234567", "sms-400")
    provider.then(Reply(400, {"code": 117, "message": "Your recipient list contains no correct numbers"}))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        assert dispatch_batch(app, now=NOW)["failed"] == 1
        assert not dispatch_batch(app, now=NOW + dt.timedelta(days=1))
    finally:
        app.close()
    failed = row(engine, message_id)
    assert failed.status == "failed" and failed.attempts == 1 and "400" in failed.last_error
    assert len(provider.received) == 1

    result = CliRunner().invoke(cli, ["messages", "show", siret, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["answer"].startswith("Reçu : non")
    [message] = shown["messages"]
    assert message["channel"] == "sms" and message["status"] == "failed"
    assert [s["status"] for s in message["history"]] == ["claimed", "handed_over", "failed"]
    assert "400" in message["history"][-1]["detail"]


# --- opt-out, closure, "not to contact": checked again when the message leaves ---


def test_sms_opt_out_closure_and_not_to_contact_between_planning_and_sending(settings, engine, provider):
    stopped, _, _ = sms_message(engine, "+33611111111", "sms-stop")
    closed, closed_business, _ = sms_message(engine, "+33622222222", "sms-closed")
    shy, shy_business, _ = sms_message(engine, "+33633333333", "sms-shy")
    fine, _, _ = sms_message(engine, "+33644444444", "sms-fine")
    with engine.begin() as conn:
        # What a STOP reply or a closure notice does elsewhere, after planning and before this dispatch.
        conn.execute(Suppression.__table__.insert().values(channel="phone", address="+33611111111",
                                                           reason="stop_reply", created_at=NOW))
        conn.execute(update(BUSINESS).where(BUSINESS.c.id == closed_business).values(state="closed"))
        conn.execute(update(BUSINESS).where(BUSINESS.c.id == shy_business).values(do_not_contact=True))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        counts = dispatch_all(app)
    finally:
        app.close()
    assert counts["sent"] == 1
    assert counts["cancelled_opted_out"] == counts["cancelled_closed"] == counts["cancelled_not_to_contact"] == 1
    assert [r.json()["recipients"] for r in provider.received] == [[{"phone_number": "+33644444444"}]]
    for message_id, reason in ((stopped, "opted_out"), (closed, "closed"), (shy, "not_to_contact")):
        assert row(engine, message_id).status == "cancelled"
        assert history(engine, message_id)[-1].detail == reason
    assert row(engine, fine).status == "sent"


# --- the operator's question ---


def test_messages_show_answers_received_when_and_on_which_channel(settings, engine, smtp_sink, env_settings):
    seed_outbox(engine, 1, now=NOW)  # planned by the planner's own context builder
    with engine.connect() as conn:
        message_id, siret, name = conn.execute(
            select(MESSAGES.c.id, BUSINESS.c.siret, CAMPAIGNS.c.name)
            .join(BUSINESS, BUSINESS.c.id == MESSAGES.c.business_id)
            .join(CAMPAIGNS, CAMPAIGNS.c.id == MESSAGES.c.campaign_id)).one()
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        counts = dispatch_all(app)
        assert counts["sent"] == 1, (counts, row(engine, message_id).last_error)
    finally:
        app.close()
    shown = json.loads(CliRunner().invoke(cli, ["messages", "show", siret, "--json"]).output)
    assert shown["answer"] == f"Reçu : oui, 1 message(s) : e-mail le 1 déc. 2026, 10 h 30 (campagne « {name} »)."
    [message] = shown["messages"]
    assert message["rfc_message_id"] == f"<declic.{message_id}@127.0.0.1>"
    assert [s["status"] for s in message["history"]] == ["claimed", "handed_over", "sent"]
    assert smtp_sink.by_message_id == Counter({message["rfc_message_id"]: 1})
    table = CliRunner().invoke(cli, ["messages", "show", siret])
    assert table.exit_code == 0 and "envoyé" in table.output and "e-mail" in table.output
    assert CliRunner().invoke(cli, ["messages", "show", "00000000000000"]).exit_code == 1


# --- the fence: a lease taken over by another worker stops the message inside DATA ---


def test_a_lease_lost_before_the_handoff_sends_nothing(settings, engine, smtp_sink, monkeypatch):
    seed_outbox(engine, 30, now=NOW)
    with engine.connect() as conn:
        stolen = conn.execute(select(MESSAGES.c.id).order_by(MESSAGES.c.id).limit(1).offset(10)).scalar()
    real_prepare = dispatch.prepare_batch

    def prepare_then_lose_one(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        if prepared is not None and any(r.id == stolen for r in prepared.rows):
            with engine.begin() as conn:  # what a second worker does once it believes the lease expired
                conn.execute(update(MESSAGES).where(MESSAGES.c.id == stolen).values(lease_owner="autre:1:x"))
        return prepared

    monkeypatch.setattr(dispatch, "prepare_batch", prepare_then_lose_one)
    app = bootstrap(settings.model_copy(update={"smtp_connections": 4}), clock=lambda: NOW)
    try:
        counts = dispatch_all(app)
    finally:
        app.close()
    assert counts["sent"] == 29 and counts["abandoned"] == 1
    assert f"<declic.{stolen}@127.0.0.1>" not in smtp_sink.by_message_id
    assert len(smtp_sink.by_message_id) == 29 and smtp_sink.duplicates() == {}
    lost = row(engine, stolen)
    assert lost.status == "claimed" and lost.lease_owner == "autre:1:x"  # left to its new owner
