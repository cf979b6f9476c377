"""The SMS provider throttles then accepts, or refuses: through the real dispatcher and outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from integrations.loopback import LoopbackPeer, Reply, octopush_ok
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_batch
from store.models import Message, MessageEvent
from tests.utils.outreach import business, campaign, context, enrol, use_octopush_peer

MESSAGES = Message.__table__
EVENTS = MessageEvent.__table__
# A Tuesday morning, inside every send window.
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def provider(settings) -> Iterator[LoopbackPeer]:
    with LoopbackPeer(octopush_ok) as peer:
        use_octopush_peer(settings, peer)
        yield peer


def sms_message(engine, phone: str) -> int:
    campaign_id = campaign(engine, f"sms-{phone[-4:]}", "35")
    with engine.begin() as conn:
        business_id = business(conn, "35238")
        _, message_id = enrol(
            conn, campaign_id, business_id, status="planned", channel="sms", at=NOW, ctx=context()
        )
        conn.execute(MESSAGES.update().where(MESSAGES.c.id == message_id).values(recipient=phone))
    return message_id


def row(engine, message_id: int):
    with engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()


def history(engine, message_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(EVENTS.c.status).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)
            ).scalars()
        )


def test_429_backs_off_as_told_then_200_delivers_once(settings, engine, provider: LoopbackPeer) -> None:
    message_id = sms_message(engine, "+33612345678")
    provider.then(Reply(429, {"code": 429, "message": "Too many requests"}, {"Retry-After": "120"}))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        assert dispatch_batch(app, now=NOW)["retry"] == 1
        throttled = row(engine, message_id)
        assert throttled.status == "planned"
        assert throttled.due_at >= NOW + dt.timedelta(seconds=120)
        assert "429" in throttled.last_error

        assert not dispatch_batch(app, now=NOW + dt.timedelta(seconds=60))  # not due yet
        assert dispatch_batch(app, now=throttled.due_at)["sent"] == 1
    finally:
        app.close()
    sent = row(engine, message_id)
    assert sent.status == "sent" and sent.provider_id.startswith("sms_")
    bodies = [r.json() for r in provider.received]
    assert len(bodies) == 2 and bodies[0]["request_id"] == bodies[1]["request_id"] == sent.rfc_message_id
    assert bodies[1]["recipients"] == [{"phone_number": "+33612345678"}]
    assert "STOP" in bodies[1]["text"]  # the SMS templates carry the opt-out mention


def test_400_is_permanent_and_recorded(settings, engine, provider: LoopbackPeer) -> None:
    message_id = sms_message(engine, "+33781234567")
    provider.then(Reply(400, {"code": 117, "message": "Your recipient list contains no correct numbers"}))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        assert dispatch_batch(app, now=NOW)["failed"] == 1
        assert not dispatch_batch(app, now=NOW + dt.timedelta(days=1))  # never retried
    finally:
        app.close()
    failed = row(engine, message_id)
    assert failed.status == "failed"
    assert "400" in failed.last_error and "117" in failed.last_error
    assert history(engine, message_id)[-1] == "failed"
    assert len(provider.received) == 1


def test_the_history_tells_the_throttling_story(settings, engine, provider: LoopbackPeer) -> None:
    message_id = sms_message(engine, "+33612345670")
    provider.then(Reply(503, None, {"Retry-After": "30"}))
    app = bootstrap(settings, clock=lambda: NOW)
    try:
        dispatch_batch(app, now=NOW)
        dispatch_batch(app, now=NOW + dt.timedelta(hours=1))
    finally:
        app.close()
    steps = history(engine, message_id)
    assert steps[-1] == "sent" and "retry" in steps
    assert row(engine, message_id).status == "sent"
