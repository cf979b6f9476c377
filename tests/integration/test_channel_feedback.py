"""What comes back from channels reaches the store: STOP replies opt out, hard bounces too."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from sqlalchemy import select

from integrations.email_bounce import parse_dsn
from integrations.sms_http import parse_delivery, parse_inbound
from store.feedback import record_bounces, record_sms_deliveries, record_sms_replies
from store.models import Interaction, Message, MessageEvent, Suppression
from tests.utils.outreach import business, campaign, context, enrol

PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone

MESSAGES = Message.__table__
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # when the answers come back
_names = itertools.count(1)


def seed(engine, channel: str, recipient: str, *, status: str = "sent") -> int:
    campaign_id = campaign(engine, f"retour-{channel}-{next(_names)}", "35")
    with engine.begin() as conn:
        business_id = business(conn, "35238")
        _, message_id = enrol(
            conn, campaign_id, business_id, channel=channel, status=status, ctx=context(), at=T0
        )
        conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == message_id)
            .values(
                recipient=recipient,
                rfc_message_id=f"<declic.{message_id}@declic.test>",
                provider_id=f"sms_ticket_{message_id}" if channel == "sms" else None,
            )
        )
    return message_id


def test_a_stop_reply_opts_the_number_out_and_cancels_what_was_planned(engine) -> None:
    sent = seed(engine, "sms", "+33612345678")
    planned = seed(engine, "sms", "+33612345678", status="planned")
    payload = {
        "message_id": f"sms_ticket_{sent}",
        "number": "+33612345678",
        "text": "Stop",
        "reception_date": "2026-11-27 10:02:00",
    }
    with engine.begin() as conn:
        counts = record_sms_replies(conn, parse_inbound(payload, zone=PARIS), source="octopush", now=NOW)
    assert counts == {"opt_outs": 1}
    with engine.connect() as conn:
        suppression = conn.execute(select(Suppression.__table__)).one()
        assert (suppression.channel, suppression.address, suppression.reason) == (
            "phone",
            "+33612345678",
            "stop_reply",
        )
        assert conn.execute(select(MESSAGES.c.status).where(MESSAGES.c.id == planned)).scalar() == "cancelled"
        interaction = conn.execute(select(Interaction.__table__)).one()
        assert (interaction.kind, interaction.message_id) == ("unsubscribe", sent)


def test_an_ordinary_reply_is_kept_for_the_operator(engine) -> None:
    sent = seed(engine, "sms", "+33781234567")
    payload = [{"from": "07 81 23 45 67", "text": "Oui, rappelez-moi demain", "reference": ""}]
    with engine.begin() as conn:
        counts = record_sms_replies(conn, parse_inbound(payload, zone=PARIS), source="generic", now=NOW)
    assert counts == {"replies": 1}
    with engine.connect() as conn:
        interaction = conn.execute(select(Interaction.__table__)).one()
        assert conn.execute(select(Suppression.__table__)).first() is None
    assert (interaction.kind, interaction.message_id) == ("sms_reply", sent)  # matched by the number
    assert interaction.data["text"] == "Oui, rappelez-moi demain"


def test_a_hard_bounce_opts_the_address_out_and_fails_the_message(engine) -> None:
    message_id = seed(engine, "email", "plombier.durand@exemple.fr")
    dsn = f"""\
From: MAILER-DAEMON@mx.exemple.fr
To: bounces@declic.test
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Sorry.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.exemple.fr

Final-Recipient: rfc822; plombier.durand@exemple.fr
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B
Content-Type: text/rfc822-headers

Message-ID: <declic.{message_id}@declic.test>

--B--
"""
    with engine.begin() as conn:
        counts = record_bounces(conn, parse_dsn(dsn), source="bounce-mailbox", now=NOW)
    assert counts == {"hard": 1}
    with engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
        suppression = conn.execute(select(Suppression.__table__)).one()
        events = (
            conn.execute(
                select(MessageEvent.__table__.c.status).where(
                    MessageEvent.__table__.c.message_id == message_id
                )
            )
            .scalars()
            .all()
        )
    assert row.status == "failed" and "5.1.1" in row.last_error
    assert (suppression.channel, suppression.address, suppression.reason) == (
        "email",
        "plombier.durand@exemple.fr",
        "bounce",
    )
    assert events[-1] == "bounced"


def test_delivery_receipts_complete_the_message_history(engine) -> None:
    delivered = seed(engine, "sms", "+33612345001")
    invalid = seed(engine, "sms", "+33612345002")
    payload = [
        {
            "message_id": f"sms_ticket_{delivered}",
            "number": "+33612345001",
            "status": "DELIVERED",
            "delivery_date": "2026-11-27 11:46:06",
        },
        {
            "message_id": f"sms_ticket_{invalid}",
            "number": "+33612345002",
            "status": "BAD_DESTINATION",
            "delivery_date": "2026-11-27 11:46:07",
        },
        {"message_id": "sms_unknown", "number": "+33612345003", "status": "DELIVERED"},
    ]
    with engine.begin() as conn:
        counts = record_sms_deliveries(conn, parse_delivery(payload, zone=PARIS), source="octopush", now=NOW)
    assert counts == {"delivered": 1, "invalid": 1, "unmatched": 1}
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(MESSAGES.c.id, MESSAGES.c.status).where(MESSAGES.c.id.in_([delivered, invalid]))
            ).all()
        )
        suppressions = conn.execute(
            select(Suppression.__table__.c.address, Suppression.__table__.c.reason)
        ).all()
        events = conn.execute(
            select(MessageEvent.__table__.c.message_id, MessageEvent.__table__.c.status)
        ).all()
    assert statuses == {delivered: "delivered", invalid: "failed"}
    assert suppressions == [("+33612345002", "bounce")]
    assert (delivered, "delivered") in events and (invalid, "undelivered") in events
