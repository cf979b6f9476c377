"""SMTP channel against a real SMTP server on loopback (aiosmtpd) that answers as scripted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from integrations.base import OutgoingMessage
from integrations.email_smtp import SmtpChannel
from integrations.smtp_sink import free_port
from orchestrator.core.outcomes import Outcome


class ScriptedServer:
    """An SMTP server whose RCPT and end-of-DATA replies are chosen per recipient."""

    def __init__(self) -> None:
        self.rcpt_replies: dict[str, list[str]] = {}  # address -> replies, used once each, in order
        self.data_replies: dict[str, str] = {}
        self.accepted: list[bytes] = []
        self.sessions = 0
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 (aiosmtpd API)
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        queue = self.rcpt_replies.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        reply = self.data_replies.get(envelope.rcpt_tos[0])
        if reply:
            return reply
        self.accepted.append(envelope.content)
        return "250 2.0.0 Ok: queued as 4F1B2"

    def message_ids(self) -> list[str]:
        return [str(message_from_bytes(raw)["Message-ID"]) for raw in self.accepted]

    def __enter__(self) -> ScriptedServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def mail(message_id: int, to: str) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        channel="email",
        recipient=to,
        subject="Bonjour",
        body="Bonjour,\nvotre boulangerie peut gagner du temps.\n",
        rfc_message_id=f"<declic.{message_id}@test>",
    )


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def channel(server: ScriptedServer) -> Iterator[SmtpChannel]:
    channel = SmtpChannel("127.0.0.1", server.port, sender="Déclic <bonjour@declic.example>", timeout=5)
    yield channel
    channel.close()


def test_replies_are_classified_and_the_batch_goes_on(channel: SmtpChannel, server: ScriptedServer) -> None:
    server.rcpt_replies = {
        "inconnu@exemple.fr": ["550 5.1.1 <inconnu@exemple.fr>: Recipient address rejected: User unknown"],
        "grise@exemple.fr": ["450 4.2.1 Greylisted, please try again later"],
        "pleine@exemple.fr": ["552 5.2.2 Mailbox full"],
    }
    server.data_replies = {"spam@exemple.fr": "554 5.7.1 Message rejected as spam"}
    batch = [
        mail(1, "ok@exemple.fr"),
        mail(2, "inconnu@exemple.fr"),
        mail(3, "grise@exemple.fr"),
        mail(4, "pleine@exemple.fr"),
        mail(5, "spam@exemple.fr"),
        mail(6, "ok2@exemple.fr"),
    ]
    results = channel.send(batch)
    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.PERMANENT,
        Outcome.TRANSIENT,
        Outcome.TRANSIENT,
        Outcome.PERMANENT,
        Outcome.SENT,
    ]
    assert results[1].detail.startswith("adresse inconnue chez le destinataire (550 5.1.1")
    assert results[2].detail.startswith("refus temporaire du serveur")
    assert results[3].detail.startswith("boîte aux lettres pleine")
    assert "filtre anti-spam" in results[4].detail
    assert results[0].detail.startswith("250")
    assert server.message_ids() == ["<declic.1@test>", "<declic.6@test>"]
    assert server.sessions == 1  # rejections were reset on the same connection


def test_a_421_closes_the_session_and_the_next_message_reconnects(
    channel: SmtpChannel, server: ScriptedServer
) -> None:
    server.rcpt_replies = {"occupe@exemple.fr": ["421 4.3.2 Service shutting down, try later"]}
    # (another domain: a 421 also pauses its own domain, issue 18)
    results = channel.send([mail(1, "occupe@exemple.fr"), mail(2, "ok@autre-exemple.fr")])
    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.SENT]
    assert results[0].detail.startswith("serveur de courrier indisponible")
    assert server.sessions == 2


def test_a_server_that_cannot_be_reached_answers_the_whole_batch_fast() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), sender="bonjour@declic.example", timeout=5)
    started = time.monotonic()
    try:
        results = channel.send([mail(i, f"p{i}@exemple.fr") for i in range(200)])
    finally:
        channel.close()
    assert all(r.outcome is Outcome.TRANSIENT for r in results)
    assert "injoignable" in results[0].detail and results[-1].detail == results[0].detail
    assert time.monotonic() - started < 2  # one refused connection, not 200


def test_a_lost_lease_abandons_inside_data_and_nothing_is_delivered(
    channel: SmtpChannel, server: ScriptedServer
) -> None:
    results = channel.send(
        [mail(1, "a@exemple.fr"), mail(2, "b@exemple.fr"), mail(3, "c@exemple.fr")],
        on_handoff=lambda message_id: message_id != 2,
    )
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.ABANDONED, Outcome.SENT]
    assert server.message_ids() == ["<declic.1@test>", "<declic.3@test>"]


def test_the_server_coming_back_is_used_by_the_next_batch() -> None:
    port = free_port()
    channel = SmtpChannel("127.0.0.1", port, sender="bonjour@declic.example", timeout=5)
    try:
        assert channel.send([mail(1, "a@exemple.fr")])[0].outcome is Outcome.TRANSIENT
        server = ScriptedServer()
        server.port = port
        server._controller = Controller(server, hostname="127.0.0.1", port=port)
        with server:
            assert channel.send([mail(1, "a@exemple.fr")])[0].outcome is Outcome.SENT
            assert server.message_ids() == ["<declic.1@test>"]
    finally:
        channel.close()
