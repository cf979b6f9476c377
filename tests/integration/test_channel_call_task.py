"""Call-task channel with the real store (SQLite and PostgreSQL): queue, idempotence, rescheduling.

The channel never opens the store: `send` below does what the dispatcher does around it (the store's facts put on
the messages, the channel's decisions queued in one transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from integrations.base import Handoff, OutgoingMessage, factory_for
from integrations.call_task import CallFacts, CallTaskChannel
from orchestrator.app.calls import call_facts, queue_tasks, record_attempt
from orchestrator.core.outcomes import Outcome, SendResult
from store.call_tasks import TASKS, due_tasks
from store.models import Business, Campaign, Enrollment, Message

PARIS = ZoneInfo("Europe/Paris")
# Friday 27 November 2026, 08:00 in Paris: before the morning window opens.
FRIDAY_EARLY = dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.UTC)


def _outbox(
    engine, count: int, *, phone: str | None = None, consent: bool = True, departement: str | None = None
) -> list[tuple[int, int]]:
    """`count` outbox messages (channel "call"), one business each: [(message_id, business_id)]."""
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    ids = []
    with engine.begin() as conn:
        campaign_id = conn.execute(
            Campaign.__table__.insert().values(
                name="appels-35",
                owner="CMA",
                status="active",
                version=1,
                spec={},
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        for i in range(count):
            business_id = conn.execute(
                Business.__table__.insert().values(
                    siret=f"{12345678900000 + i:014d}",
                    siren="123456789",
                    state="active",
                    do_not_contact=False,
                    phone=phone,
                    phone_consent=consent,
                    departement_code=departement,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            enrollment_id = conn.execute(
                Enrollment.__table__.insert().values(
                    campaign_id=campaign_id,
                    business_id=business_id,
                    trigger_key="creation",
                    trigger_type="creation",
                    arm="treatment",
                    campaign_version=1,
                    enrolled_at=now,
                )
            ).inserted_primary_key[0]
            message_id = conn.execute(
                Message.__table__.insert().values(
                    campaign_id=campaign_id,
                    enrollment_id=enrollment_id,
                    business_id=business_id,
                    step=0,
                    channel="call",
                    template="call/creation",
                    due_at=now,
                    status="claimed",
                    attempts=0,
                    context={},
                    created_at=now,
                )
            ).inserted_primary_key[0]
            ids.append((message_id, business_id))
    return ids


def call(message_id: int, business_id: int, phone: str = "06 12 34 56 78", **meta: object) -> OutgoingMessage:
    base: dict[str, object] = {"consent": True, "business_id": business_id}
    base.update(meta)
    return OutgoingMessage(
        message_id=message_id,
        channel="call",
        recipient=phone,
        body="Bonjour, je suis Claire, conseillère à la CMA. Vous venez d'ouvrir votre boulangerie...",
        meta=base,
    )


def send(engine, channel: CallTaskChannel, batch: Sequence[OutgoingMessage],
         on_handoff: Handoff | None = None) -> list[SendResult]:
    """As the dispatcher does: the store's facts on the messages, the channel's decisions, the tasks queued."""
    with engine.connect() as conn:
        facts = call_facts(conn, batch)
    results = channel.send([replace(m, facts=facts[m.message_id]) for m in batch], on_handoff=on_handoff)
    with engine.begin() as conn:
        return queue_tasks(conn, results)


@pytest.fixture
def channel() -> CallTaskChannel:
    return CallTaskChannel(clock=lambda: FRIDAY_EARLY, timezone="Europe/Paris")


def test_the_channel_decides_from_the_facts_on_the_message_alone() -> None:
    # No store: the consent, the past calls and the open tasks come on the message; the task comes back as values.
    channel = CallTaskChannel(clock=lambda: FRIDAY_EARLY, timezone="Europe/Paris")
    silent = OutgoingMessage(message_id=1, channel="call", recipient="06 12 34 56 78", body="Bonjour",
                             meta={"business_id": 5})
    assert channel.send([silent])[0].outcome is Outcome.PERMANENT  # no facts: no consent known
    consented = replace(silent, facts=CallFacts(consent=True, phone="+33612345678"))
    [result] = channel.send([consented])
    assert result.outcome is Outcome.SENT and result.provider_id == ""
    assert result.record is not None and result.record["phone"] == "+33612345678"
    assert result.record["business_id"] == 5 and result.record["assignee"] == "adviser"
    [queued] = channel.send([replace(consented, facts=CallFacts(consent=True, phone="+33612345678", queued_task=9))])
    assert (queued.outcome, queued.provider_id, queued.record) == (Outcome.SENT, "9", None)


def test_the_channel_registers_itself_by_name(settings) -> None:
    channel = factory_for("call")(settings)
    assert isinstance(channel, CallTaskChannel)
    assert channel.timezone == "Europe/Paris"


def test_a_task_is_queued_at_the_next_allowed_time(channel: CallTaskChannel, engine) -> None:
    [(message_id, business_id)] = _outbox(engine, 1)
    [result] = send(engine, channel, [call(message_id, business_id, ambassador_id=7)])
    assert result.outcome is Outcome.SENT, result.detail
    assert "27/11/2026 à 10:00" in result.detail
    with engine.connect() as conn:
        task = conn.execute(select(TASKS)).one()
    assert task.id == int(result.provider_id)
    assert (task.message_id, task.business_id, task.phone) == (message_id, business_id, "+33612345678")
    assert task.assignee == "ambassador:7"
    assert task.status == "open" and task.attempts == 0
    assert "conseillère" in task.script
    assert task.due_at.astimezone(PARIS) == dt.datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)


def test_queueing_is_idempotent_on_the_message(channel: CallTaskChannel, engine) -> None:
    [(message_id, business_id)] = _outbox(engine, 1)
    first = send(engine, channel, [call(message_id, business_id)])[0]
    again = send(engine, channel, [call(message_id, business_id)])[0]
    assert again.outcome is Outcome.SENT and again.provider_id == first.provider_id
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TASKS)).scalar() == 1


def test_no_consent_bad_number_or_empty_script_are_permanent(channel: CallTaskChannel, engine) -> None:
    (m1, b1), (m2, b2), (m3, b3), (m4, b4) = _outbox(engine, 4)
    no_consent = call(m1, b1, consent=False)
    bad_number = call(m2, b2, phone="12")
    empty = OutgoingMessage(
        message_id=m3, channel="call", recipient="0612345679", body=" ", meta={"consent": True}
    )
    relationship = call(
        m4, b4, phone="02 99 00 00 00", consent=False, relationship=True
    )  # a landline is fine
    results = send(engine, channel, [no_consent, bad_number, empty, relationship])
    assert [r.outcome for r in results] == [
        Outcome.PERMANENT,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
        Outcome.SENT,
    ]
    assert "consentement" in results[0].detail
    assert "invalide" in results[1].detail
    assert "vide" in results[2].detail
    with engine.connect() as conn:
        assert [r.phone for r in conn.execute(select(TASKS))] == ["+33299000000"]


def test_one_open_task_per_number(channel: CallTaskChannel, engine) -> None:
    (m1, b1), (m2, b2) = _outbox(engine, 2)
    results = send(engine, channel, [call(m1, b1), call(m2, b2)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert "déjà prévu" in results[1].detail
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TASKS)).scalar() == 1


def test_a_lost_lease_queues_nothing(channel: CallTaskChannel, engine) -> None:
    (m1, b1), (m2, b2) = _outbox(engine, 2)
    results = send(engine, channel, [call(m1, b1), call(m2, b2, phone="0781234567")],
                   on_handoff=lambda mid: mid == m2)
    assert [r.outcome for r in results] == [Outcome.ABANDONED, Outcome.SENT]
    with engine.connect() as conn:
        assert [r.message_id for r in conn.execute(select(TASKS))] == [m2]


def test_attempts_reschedule_then_close_the_task(channel: CallTaskChannel, engine) -> None:
    [(message_id, business_id)] = _outbox(engine, 1)
    task_id = int(send(engine, channel, [call(message_id, business_id)])[0].provider_id)

    with engine.connect() as conn:
        assert due_tasks(conn, now=FRIDAY_EARLY) == []
        assert [t.id for t in due_tasks(conn, now=FRIDAY_EARLY + dt.timedelta(hours=3))] == [task_id]
        assert due_tasks(conn, now=FRIDAY_EARLY + dt.timedelta(hours=3), assignee="ambassador:1") == []

    # Friday 10:05 no answer -> next allowed attempt Monday 10:00 (one day apart, then the weekend).
    first = dt.datetime(2026, 11, 27, 10, 5, tzinfo=PARIS)
    with engine.begin() as conn:
        assert record_attempt(conn, task_id, outcome="no_answer", at=first, zone=PARIS) == "open"
        task = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()
    assert task.attempts == 1
    assert task.due_at.astimezone(PARIS) == dt.datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)

    for day in (30, 1, 2):
        at = dt.datetime(2026, 11 if day == 30 else 12, day, 11, 0, tzinfo=PARIS)
        with engine.begin() as conn:
            status = record_attempt(conn, task_id, outcome="no_answer", at=at, zone=PARIS)
    assert status == "no_answer"  # the fourth attempt without an answer closes the task
    with engine.connect() as conn:
        task = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()
    assert task.attempts == 4 and len(task.history) == 4


def test_a_refusal_closes_the_task_and_blocks_the_number_for_sixty_days(engine) -> None:
    (m1, b1), (m2, b2) = _outbox(engine, 2)
    channel = CallTaskChannel(clock=lambda: FRIDAY_EARLY, timezone="Europe/Paris")
    task_id = int(send(engine, channel, [call(m1, b1)])[0].provider_id)
    refused_at = dt.datetime(2026, 11, 27, 10, 30, tzinfo=PARIS)
    with engine.begin() as conn:
        assert (
            record_attempt(conn, task_id, outcome="refused", at=refused_at, note="ne veut pas être appelé", zone=PARIS)
            == "refused"
        )

    # A week later another campaign wants to call the same number: the task waits 60 days.
    later = CallTaskChannel(clock=lambda: FRIDAY_EARLY + dt.timedelta(days=7), timezone="Europe/Paris")
    [result] = send(engine, later, [call(m2, b2)])
    assert result.outcome is Outcome.SENT
    with engine.connect() as conn:
        task = conn.execute(select(TASKS).where(TASKS.c.message_id == m2)).one()
    assert task.due_at.astimezone(PARIS) == dt.datetime(2027, 1, 26, 10, 30, tzinfo=PARIS)


def test_unknown_outcome_is_refused(channel: CallTaskChannel, engine) -> None:
    [(message_id, business_id)] = _outbox(engine, 1)
    task_id = int(send(engine, channel, [call(message_id, business_id)])[0].provider_id)
    with engine.begin() as conn, pytest.raises(ValueError, match="unknown call outcome"):
        record_attempt(conn, task_id, outcome="maybe", at=FRIDAY_EARLY, zone=PARIS)


def test_consent_is_read_again_from_the_business_when_the_meta_is_silent(
    channel: CallTaskChannel, engine
) -> None:
    [(m1, b1)] = _outbox(engine, 1, phone="+33612345678", consent=True)
    silent = OutgoingMessage(
        message_id=m1, channel="call", recipient="06 12 34 56 78", body="Bonjour", meta={"business_id": b1}
    )
    other_number = OutgoingMessage(
        message_id=m1, channel="call", recipient="06 99 99 99 99", body="Bonjour", meta={"business_id": b1}
    )
    # The business's consent does not cover a number that is not its own.
    assert send(engine, channel, [other_number])[0].outcome is Outcome.PERMANENT
    assert send(engine, channel, [silent])[0].outcome is Outcome.SENT


def test_without_consent_in_the_store_the_call_is_refused(channel: CallTaskChannel, engine) -> None:
    [(message_id, business_id)] = _outbox(engine, 1, phone="+33612345678", consent=False)
    message = OutgoingMessage(
        message_id=message_id,
        channel="call",
        recipient="+33612345678",
        body="Bonjour",
        meta={"business_id": business_id},
    )
    [result] = send(engine, channel, [message])
    assert result.outcome is Outcome.PERMANENT and "consentement" in result.detail


def test_the_business_departement_gives_its_holidays_and_clock(engine) -> None:
    # La Réunion: 20 December 2027 is a public holiday there, and its clock is UTC+4.
    [(message_id, business_id)] = _outbox(engine, 1, phone="+262692123456", consent=True, departement="974")
    monday = dt.datetime(2027, 12, 20, 4, 0, tzinfo=dt.UTC)  # 08:00 in La Réunion
    channel = CallTaskChannel(clock=lambda: monday, timezone="Europe/Paris")
    message = OutgoingMessage(
        message_id=message_id,
        channel="call",
        recipient="0692 12 34 56",
        body="Bonjour",
        meta={"business_id": business_id},
    )
    assert send(engine, channel, [message])[0].outcome is Outcome.SENT
    with engine.connect() as conn:
        task = conn.execute(select(TASKS)).one()
    reunion = ZoneInfo("Indian/Reunion")
    assert task.due_at.astimezone(reunion) == dt.datetime(2027, 12, 21, 10, 0, tzinfo=reunion)


def test_rescheduling_uses_the_business_departement_holidays(engine) -> None:
    # Moselle: Good Friday 26 March 2027 is a holiday there; a no-answer on Thursday 25 at 19:00 moves
    # past the Friday, the weekend and Easter Monday to Tuesday 30 March.
    [(message_id, business_id)] = _outbox(engine, 1, phone="+33612345678", consent=True, departement="57")
    thursday = dt.datetime(2027, 3, 25, 9, 0, tzinfo=dt.UTC)
    channel = CallTaskChannel(clock=lambda: thursday, timezone="Europe/Paris")
    message = OutgoingMessage(
        message_id=message_id,
        channel="call",
        recipient="+33612345678",
        body="Bonjour",
        meta={"business_id": business_id},
    )
    task_id = int(send(engine, channel, [message])[0].provider_id)
    with engine.begin() as conn:
        record_attempt(conn, task_id, outcome="no_answer", at=dt.datetime(2027, 3, 25, 19, 0, tzinfo=PARIS), zone=PARIS)
        task = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()
    assert task.due_at.astimezone(PARIS) == dt.datetime(2027, 3, 30, 10, 0, tzinfo=PARIS)
