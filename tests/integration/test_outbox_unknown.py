"""A dispatcher killed between the fence and the record of the answer (issue 14, finding 14): the message
it handed over is recorded `unknown`, never `sent` and never sent again on its own; `declic status` counts
it, `declic messages show` says so, and `declic messages resend --unknown` sends it again when an operator
decides to. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from bench.bench_email import seed_outbox
from integrations.email_smtp import SmtpChannel
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all, dispatch_batch
from orchestrator.cli.main import app as cli
from orchestrator.cli.status import collect, render
from orchestrator.core.outcomes import DELIVERED, DeliveryReceipt, Outcome, SendResult
from store.feedback import record_sms_deliveries
from store.models import Business, Campaign, Message, MessageEvent
from store.outbox import Fence, claim_due, record_results, release_expired

MESSAGES, EVENTS = Message.__table__, MessageEvent.__table__
BUSINESS, CAMPAIGNS = Business.__table__, Campaign.__table__
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


class Killed(BaseException):
    """What SIGKILL does to a dispatcher, without killing the test: nothing after it runs (only `finally`)."""


class AcceptThenDie:
    """An e-mail channel whose server accepts the first message (its DATA, then the final ".") and whose
    dispatcher dies right after, before any answer is recorded: the handoff window."""

    name = "email"

    def __init__(self, kill: type[BaseException]) -> None:
        self.kill = kill
        self.accepted: list[int] = []

    def send(self, batch, on_handoff=None, on_answer=None):
        first = batch[0]
        assert on_handoff(first.message_id)  # the fence: its row says handed over, committed
        self.accepted.append(first.message_id)  # the server queued it
        raise self.kill()

    def close(self) -> None:
        pass


def statuses(engine) -> Counter:
    with engine.connect() as conn:
        return Counter(conn.execute(select(MESSAGES.c.status)).scalars())


def row(engine, message_id: int):
    with engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()


def steps(engine, message_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(EVENTS.c.status).where(EVENTS.c.message_id == message_id)
                                 .order_by(EVENTS.c.id)).scalars())


@pytest.mark.parametrize("kill", [Killed, SystemExit, KeyboardInterrupt])
def test_killed_in_the_handoff_window_the_message_becomes_unknown_and_is_never_resent(settings, engine,
                                                                                       smtp_sink, kill):
    seed_outbox(engine, 5, now=NOW)
    crashing = bootstrap(settings, clock=lambda: NOW)
    channel = AcceptThenDie(kill)
    crashing.channels["email"] = channel
    with pytest.raises(kill):
        dispatch_batch(crashing, now=NOW)
    [accepted] = channel.accepted
    # Right after the kill: handed over, not sent; the four others were claimed and never handed over.
    assert row(engine, accepted).status == "handed_over"
    assert statuses(engine) == Counter({"handed_over": 1, "claimed": 4})

    # The restart, once the leases ran out: the four go out, the one handed over becomes unknown.
    restart = NOW + dt.timedelta(seconds=settings.lease_seconds + 1)
    app = bootstrap(settings, clock=lambda: restart)
    try:
        counts = dispatch_all(app)
    finally:
        app.close()
    assert counts["sent"] == 4
    assert statuses(engine) == Counter({"sent": 4, "unknown": 1})
    assert f"<declic.{accepted}@127.0.0.1>" not in smtp_sink.by_message_id
    assert len(smtp_sink.by_message_id) == 4 and smtp_sink.duplicates() == {}
    unknown = row(engine, accepted)
    assert unknown.provider_id is None and "sans réponse enregistrée" in unknown.last_error
    assert steps(engine, accepted) == ["claimed", "handed_over", "unknown"]
    # Later runs leave it alone.
    later = bootstrap(settings, clock=lambda: restart + dt.timedelta(days=1))
    try:
        assert not dispatch_all(later)
    finally:
        later.close()
    assert row(engine, accepted).status == "unknown"


def test_status_counts_unknown_messages_and_the_operator_resends_them(settings, engine, smtp_sink, env_settings,
                                                                      monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    seed_outbox(engine, 3, now=NOW)
    crashing = bootstrap(settings, clock=lambda: NOW)
    channel = AcceptThenDie(Killed)
    crashing.channels["email"] = channel
    with pytest.raises(Killed):
        dispatch_batch(crashing, now=NOW)
    [accepted] = channel.accepted
    with engine.connect() as conn:
        name, siret = conn.execute(
            select(CAMPAIGNS.c.name, BUSINESS.c.siret).join(MESSAGES, MESSAGES.c.campaign_id == CAMPAIGNS.c.id)
            .join(BUSINESS, BUSINESS.c.id == MESSAGES.c.business_id).where(MESSAGES.c.id == accepted)).one()

    # `declic status` counts it as soon as its lease ran out, before any dispatcher marks it.
    after_lease = NOW + dt.timedelta(seconds=settings.lease_seconds + 1)
    report = collect(bootstrap(settings), now=after_lease)
    assert report["unknown"] == {"total": 1, "by_campaign": {name: 1}}
    out = io.StringIO()
    render(report, Console(file=out, width=200), ZoneInfo(settings.timezone))
    assert f"Messages à l'issue inconnue : 1 ({name} : 1)" in out.getvalue()
    assert "declic messages resend --unknown" in out.getvalue()
    assert collect(bootstrap(settings), now=NOW)["unknown"]["total"] == 0  # still under its lease: in flight

    app = bootstrap(settings, clock=lambda: after_lease)
    try:
        assert dispatch_all(app)["sent"] == 2
    finally:
        app.close()
    shown = json.loads(CliRunner().invoke(cli, ["messages", "show", siret, "--json"]).output)
    assert shown["answer"].startswith("Reçu : on ne sait pas ; le message par e-mail du 1 déc. 2026, 10 h 30")
    assert "declic messages resend --unknown" in shown["answer"]

    runner = CliRunner()
    refused = runner.invoke(cli, ["messages", "resend"])
    assert refused.exit_code == 2 and "Précisez --unknown" in refused.output
    missing = runner.invoke(cli, ["messages", "resend", "--unknown", "--campaign", "inconnue"])
    assert missing.exit_code == 1 and "Aucune campagne nommée « inconnue »" in missing.output
    declined = runner.invoke(cli, ["messages", "resend", "--unknown"], input="n\n")
    assert declined.exit_code == 0 and "Rien n'a été renvoyé." in declined.output
    assert row(engine, accepted).status == "unknown"
    done = runner.invoke(cli, ["messages", "resend", "--unknown", "--campaign", name, "--yes"])
    assert done.exit_code == 0, done.output
    assert f"1 message(s) à l'issue inconnue dans la campagne « {name} »" in done.output
    assert "1 message(s) prévu(s) à nouveau" in done.output
    assert row(engine, accepted).status == "planned"
    assert "aucun" in runner.invoke(cli, ["messages", "resend", "--unknown", "--yes"]).output.lower()

    # The next dispatch sends it, as a new send.
    resent = bootstrap(settings, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    try:
        assert dispatch_all(resent)["sent"] == 1
    finally:
        resent.close()
    assert row(engine, accepted).status == "sent"
    assert smtp_sink.by_message_id[f"<declic.{accepted}@127.0.0.1>"] == 1
    assert steps(engine, accepted) == ["claimed", "handed_over", "unknown", "resend", "claimed", "handed_over",
                                       "sent"]
    assert collect(bootstrap(settings), dt.datetime.now(dt.UTC))["unknown"]["total"] == 0


def test_a_late_answer_settles_an_unknown_message(engine, settings):
    """The dispatcher was only slow: its lease ran out, another marked the message unknown, then the
    server's answer came back and is recorded. The database state is built step by step."""
    seed_outbox(engine, 1, now=NOW)
    lease = dt.timedelta(seconds=60)
    with engine.begin() as conn:
        [claimed] = claim_due(conn, NOW, 10, "lent:1:a", lease)
    fence = Fence(engine, "lent:1:a", lambda: NOW)
    try:
        assert fence(claimed.id, "<declic.x@127.0.0.1>")
    finally:
        fence.close()
    with engine.begin() as conn:
        release_expired(conn, NOW + lease + dt.timedelta(seconds=1))  # another dispatcher starts
    assert row(engine, claimed.id).status == "unknown"
    with engine.begin() as conn:
        counts = record_results(conn, [SendResult(claimed.id, Outcome.SENT, "250 OK", provider_id="queued as 7")],
                                "lent:1:a", NOW + lease * 2, {claimed.id})
    assert counts["sent"] == 1
    settled = row(engine, claimed.id)
    assert settled.status == "sent" and settled.provider_id == "queued as 7" and settled.last_error is None
    assert steps(engine, claimed.id) == ["claimed", "handed_over", "unknown", "sent"]


def test_a_delivery_receipt_settles_a_handed_over_or_unknown_message(engine):
    """A provider's receipt proves the message left: it may come before the dispatcher records its answer
    (handed over) or after the message was marked unknown; either way it ends delivered, and a late answer
    does not undo it."""
    seed_outbox(engine, 2, now=NOW)
    lease = dt.timedelta(seconds=60)
    with engine.begin() as conn:
        early, late = claim_due(conn, NOW, 10, "lent:1:a", lease)
    fence = Fence(engine, "lent:1:a", lambda: NOW)
    try:
        assert fence(early.id, "<declic.early@127.0.0.1>") and fence(late.id, "<declic.late@127.0.0.1>")
    finally:
        fence.close()
    with engine.begin() as conn:
        record_sms_deliveries(conn, [DeliveryReceipt("<declic.early@127.0.0.1>", DELIVERED, "DELIVERED")],
                              source="test", now=NOW)
        release_expired(conn, NOW + lease + dt.timedelta(seconds=1))
    assert row(engine, early.id).status == "delivered" and row(engine, late.id).status == "unknown"
    with engine.begin() as conn:
        record_sms_deliveries(conn, [DeliveryReceipt("<declic.late@127.0.0.1>", DELIVERED, "DELIVERED")],
                              source="test", now=NOW + lease * 2)
        record_results(conn, [SendResult(early.id, Outcome.SENT, "200", provider_id="ticket-1")], "lent:1:a",
                       NOW + lease * 2, {early.id})
    assert row(engine, late.id).status == "delivered"
    settled = row(engine, early.id)
    assert settled.status == "delivered" and settled.provider_id == "ticket-1"


class DieAtTheFourthHandoff(SmtpChannel):
    """The real e-mail channel (one connection to the sink) whose dispatcher dies right after the fourth
    message's handoff was committed, before its final ".": three messages went out and were answered."""

    def send(self, batch, on_handoff=None, on_answer=None):
        calls = []

        def handoff(message_id: int) -> bool:
            ok = on_handoff(message_id)
            calls.append(message_id)
            if len(calls) == 4:
                raise Killed()
            return ok

        return super().send(batch, on_handoff=handoff, on_answer=on_answer)


def test_only_the_message_in_flight_becomes_unknown_not_the_whole_batch(settings, engine, smtp_sink):
    seed_outbox(engine, 5, now=NOW)
    crashing = bootstrap(settings, clock=lambda: NOW)
    crashing.channels["email"] = DieAtTheFourthHandoff("127.0.0.1", smtp_sink.port, sender=settings.mail_from)
    with pytest.raises(Killed):
        dispatch_batch(crashing, now=NOW)
    # The three answered messages were settled with the next handoffs' commits; the fourth is in flight.
    assert statuses(engine) == Counter({"sent": 3, "handed_over": 1, "claimed": 1})
    restart = NOW + dt.timedelta(seconds=settings.lease_seconds + 1)
    app = bootstrap(settings, clock=lambda: restart)
    try:
        dispatch_all(app)
    finally:
        app.close()
    assert statuses(engine) == Counter({"sent": 4, "unknown": 1})
    assert len(smtp_sink.by_message_id) == 4 and smtp_sink.duplicates() == {}
    with engine.connect() as conn:
        sent = conn.execute(select(MESSAGES.c.id).where(MESSAGES.c.status == "sent")).scalars().all()
        history = Counter(conn.execute(select(EVENTS.c.status).where(EVENTS.c.message_id.in_(sent))).scalars())
    assert history["sent"] == 4  # one "sent" step each, whether settled early or at the end of the batch


def test_a_message_held_back_by_a_provider_s_pace_spends_no_attempt(settings, engine):
    # A big campaign paced by one provider for hours must not use up its tries (store.outbox.MAX_ATTEMPTS).
    seed_outbox(engine, 1, now=NOW)
    at = NOW
    for _ in range(12):
        with engine.begin() as conn:
            [row_] = claim_due(conn, at, 10, "w1", dt.timedelta(minutes=5))
            counts = record_results(conn, [SendResult(row_.id, Outcome.DEFERRED, "cadence du domaine orange.fr",
                                                      retry_after=300)], "w1", at, set())
        assert counts["deferred"] == 1
        at += dt.timedelta(seconds=300)
    held = row(engine, row_.id)
    assert (held.status, held.attempts) == ("planned", 0) and held.due_at.replace(tzinfo=dt.UTC) == at
    assert steps(engine, row_.id).count("deferred") == 12
