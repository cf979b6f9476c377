"""Pure e-mail reply and bounce rules: SMTP codes, enhanced status codes, RFC 3464 delivery reports."""

from __future__ import annotations

import pytest

from integrations.email_bounce import (
    bounce_kind,
    classify_reply,
    describe_reply,
    enhanced_status,
    outbox_id,
    parse_dsn,
)
from orchestrator.core.outcomes import Outcome


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (250, "2.0.0 Ok: queued as 4F1B2", Outcome.SENT),
        (251, "User not local; will forward", Outcome.SENT),
        (421, "4.3.2 Service shutting down", Outcome.TRANSIENT),
        (450, "4.2.1 Greylisted, try again in 5 minutes", Outcome.TRANSIENT),
        (451, "4.7.1 Try again later", Outcome.TRANSIENT),
        (452, "4.2.2 Mailbox full", Outcome.TRANSIENT),
        (550, "5.1.1 <x@exemple.fr>: Recipient address rejected: User unknown", Outcome.PERMANENT),
        (552, "5.2.2 Mailbox full", Outcome.TRANSIENT),  # full mailbox: may empty, retried
        (554, "5.7.1 Message rejected as spam", Outcome.PERMANENT),
        (553, b"5.1.3 Bad recipient address syntax", Outcome.PERMANENT),
        (500, "", Outcome.PERMANENT),
        (354, "Start mail input", Outcome.PERMANENT),  # an unexpected reply is never "sent"
    ],
)
def test_replies_are_classified(code: int, text: str | bytes, outcome: Outcome) -> None:
    assert classify_reply(code, text) is outcome


def test_classify_reply_still_works_with_the_code_alone() -> None:
    assert classify_reply(250) is Outcome.SENT
    assert classify_reply(451) is Outcome.TRANSIENT
    assert classify_reply(550) is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("5.1.1 User unknown", "5.1.1"),
        ("<a@b.fr>: Recipient address rejected (5.7.26)", "5.7.26"),
        ("Requested action not taken: mailbox unavailable", ""),
        ("version 10.1.1.2 is not a status", ""),
    ],
)
def test_enhanced_status_is_found_in_a_reply(text: str, status: str) -> None:
    assert enhanced_status(text) == status


def test_descriptions_are_plain_french_then_the_server_words() -> None:
    assert (
        describe_reply(550, "5.1.1 User unknown")
        == "adresse inconnue chez le destinataire (550 5.1.1 User unknown)"
    )
    assert describe_reply(552, b"5.2.2 Over quota").startswith("boîte aux lettres pleine")
    assert describe_reply(421, "Too many connections").startswith("serveur de courrier indisponible")
    assert describe_reply(451, "Greylisted").startswith("refus temporaire du serveur")
    assert describe_reply(554, "no").startswith("refus définitif du serveur")


def test_bounce_kinds() -> None:
    assert bounce_kind("5.1.1") == "hard"
    assert bounce_kind("5.2.2") == "soft"
    assert bounce_kind("4.4.7") == "soft"


def test_outbox_id_comes_from_declic_message_ids_only() -> None:
    assert outbox_id("<declic.4242@declic.example>") == 4242
    assert outbox_id("<CAF=abc@mail.gmail.com>") is None
    assert outbox_id("") is None


POSTFIX_DSN = b"""\
From: MAILER-DAEMON@mx.exemple.fr (Mail Delivery System)
To: bounces@declic.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.exemple.fr. I'm sorry to have to inform you that your message
could not be delivered to one or more recipients.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.exemple.fr
Arrival-Date: Fri, 27 Nov 2026 09:12:01 +0100 (CET)

Final-Recipient: rfc822; Plombier.Durand@Exemple.fr
Original-Recipient: rfc822;plombier.durand@exemple.fr
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.exemple.fr
Diagnostic-Code: smtp; 550 5.1.1 <plombier.durand@exemple.fr>:
    Recipient address rejected: User unknown in virtual mailbox table

Final-Recipient: rfc822; fleuriste@exemple.fr
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; 451 4.4.1 No answer from host

--B0UND
Content-Type: message/rfc822

From: =?utf-8?q?D=C3=A9clic?= <bonjour@declic.example>
To: plombier.durand@exemple.fr
Subject: Bonjour
Message-ID: <declic.4242@declic.example>

Bonjour.

--B0UND--
"""

HEADERS_ONLY_DSN = b"""\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@declic.example
Subject: Delivery Status Notification (Failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="xyz"

--xyz
Content-Type: text/plain; charset=UTF-8

Address not found.

--xyz
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com

Final-Recipient: rfc822; boite.pleine@gmail.com
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552-5.2.2 The email account that you tried to reach is over quota.

--xyz
Content-Type: text/rfc822-headers

Message-ID: <declic.77@declic.example>
Subject: Bonjour

--xyz--
"""


def test_a_postfix_dsn_gives_one_bounce_per_recipient() -> None:
    hard, delayed = parse_dsn(POSTFIX_DSN)
    assert hard.recipient == "plombier.durand@exemple.fr"
    assert (hard.action, hard.status, hard.kind) == ("failed", "5.1.1", "hard")
    assert hard.is_hard
    assert "User unknown in virtual mailbox table" in hard.diagnostic
    assert hard.original_message_id == "<declic.4242@declic.example>"
    assert hard.outbox_id == 4242
    assert (delayed.recipient, delayed.action, delayed.status) == ("fleuriste@exemple.fr", "delayed", "4.4.1")
    assert not delayed.is_hard


def test_a_full_mailbox_with_headers_only_is_a_soft_bounce() -> None:
    [bounce] = parse_dsn(HEADERS_ONLY_DSN.decode())
    assert (bounce.status, bounce.kind, bounce.is_hard) == ("5.2.2", "soft", False)
    assert bounce.outbox_id == 77


def test_an_ordinary_email_is_not_a_bounce() -> None:
    assert parse_dsn(b"From: a@b.fr\nTo: c@d.fr\nSubject: Re: Bonjour\n\nMerci !\n") == []
    assert (
        parse_dsn(
            b"Content-Type: multipart/report; report-type=disposition-notification; boundary=z\n\n--z--\n"
        )
        == []
    )
