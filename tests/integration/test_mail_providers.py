"""Mail that French providers accept (issue 18, item 5): a per-domain sending policy, a 421 that pauses its own
domain only, DKIM signatures that verify at the receiving end."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable, Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from integrations.base import OutgoingMessage
from integrations.email_smtp import DOMAIN_POLICY, DkimSigner, DomainGate, SmtpChannel, load_domain_policy
from integrations.smtp_sink import SmtpSink
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_batch
from orchestrator.app.settings import Settings
from orchestrator.core.outcomes import Outcome
from store.models import Message, Suppression
from store.suppressions import suppressed_among
from tests.utils.outreach import business, campaign, context, enrol

MESSAGES = Message.__table__


class Clock:
    """A monotonic clock the test moves by hand (the gate's pauses and pace, never the wall clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mail(message_id: int, to: str) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, channel="email", recipient=to, subject="Un coup de main",
                           body="Bonjour,\nvotre boulangerie peut gagner du temps.\n",
                           html_body="<p>Bonjour,</p>", rfc_message_id=f"<declic.{message_id}@test>",
                           headers={"List-Unsubscribe": "<https://declic.example/u/x>"})


@pytest.fixture
def sink(tmp_path) -> Iterator[SmtpSink]:
    with SmtpSink(folder=tmp_path / "received", write_first=100) as running:
        yield running


def channel_for(sink: SmtpSink, policy: dict, clock: Callable[[], float], connections: int = 2, **kw) -> SmtpChannel:
    channel = SmtpChannel("127.0.0.1", sink.port, sender="Déclic <bonjour@declic.example>", timeout=5,
                          connections=connections, domain_policy=load_domain_policy(policy), **kw)
    channel.gate = DomainGate(channel.gate.policy, clock=clock)
    return channel


def test_a_421_from_one_domain_pauses_that_domain_only(sink: SmtpSink) -> None:
    sink.refuse_domains["orange.fr"] = "421 4.7.0 Trop de messages, ralentissez"
    clock = Clock()
    channel = channel_for(sink, {"orange.fr": {"connections": 1, "backoff": 120}}, clock)
    try:
        batch = [mail(i, f"client{i}@{'orange.fr' if i % 2 else 'exemple.fr'}") for i in range(1, 13)]
        results = {r.message_id: r for r in channel.send(batch)}
        # The other domain goes on: every one of its messages left and arrived.
        assert all(results[i].outcome is Outcome.SENT for i in range(2, 13, 2))
        assert sink.received == 6
        # orange.fr was asked once: its 421 paused it, the rest waits without touching the wire.
        assert sink.refused["orange.fr"] == 1
        orange = [results[i] for i in range(1, 13, 2)]
        # The one asked got the 421 (tried: an attempt); the others were held back (deferred: none spent).
        assert sorted(r.outcome.value for r in orange) == ["deferred"] * 5 + ["transient"]
        assert all(r.retry_after and 100 < r.retry_after <= 120 for r in orange)
        assert sum("en pause" in r.detail for r in orange) == 5

        # Still paused in the next batch; the other domain still flows.
        results = channel.send([mail(20, "a@orange.fr"), mail(21, "b@exemple.fr")])
        assert [r.outcome for r in results] == [Outcome.DEFERRED, Outcome.SENT]
        assert sink.refused["orange.fr"] == 1 and "en pause" in results[0].detail

        # After the pause the domain is asked again; a second refusal in a row doubles the pause.
        clock.now += 121
        results = channel.send([mail(30, "c@orange.fr")])
        assert sink.refused["orange.fr"] == 2
        assert results[0].outcome is Outcome.TRANSIENT and 200 < results[0].retry_after <= 240

        # Once it accepts again, the domain's messages leave.
        sink.refuse_domains.clear()
        clock.now += 241
        assert [r.outcome for r in channel.send([mail(40, "d@orange.fr")])] == [Outcome.SENT]
    finally:
        channel.close()


def test_a_4xx_of_one_mailbox_elsewhere_does_not_pause_its_domain(sink: SmtpSink) -> None:
    sink.reject_rcpt["grise@exemple.fr"] = "450 4.2.1 Greylisted, please try again later"
    sink.reject_rcpt["pleine@orange.fr"] = "452 4.2.2 Mailbox full"
    sink.reject_rcpt["relais@free.fr"] = "451 4.3.2 System not accepting network messages"
    channel = channel_for(sink, {}, time.monotonic, connections=1)  # the real clock: orange.fr's pace passes
    try:
        results = channel.send([mail(1, "grise@exemple.fr"), mail(2, "ok@exemple.fr"), mail(3, "pleine@orange.fr"),
                                mail(4, "ok@orange.fr"), mail(5, "relais@free.fr"), mail(6, "ok@free.fr")])
        assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.SENT] * 3
    finally:
        channel.close()


def test_a_listed_provider_that_throttles_with_4_7_is_paused(sink: SmtpSink) -> None:
    sink.reject_rcpt["a@gmail.com"] = "450 4.7.28 Our system has detected an unusual rate of mail, try later"
    sink.reject_rcpt["a@exemple.fr"] = "450 4.7.1 Try again later"
    channel = channel_for(sink, {}, time.monotonic, connections=1)
    try:
        results = channel.send([mail(1, "a@gmail.com"), mail(2, "b@gmail.com"), mail(3, "a@exemple.fr"),
                                mail(4, "b@exemple.fr")])
        assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.DEFERRED, Outcome.TRANSIENT,
                                                Outcome.SENT]
        assert "en pause" in results[1].detail and results[1].retry_after > 100  # gmail.com: 120 s first
    finally:
        channel.close()


def test_a_domain_beyond_its_pace_is_deferred_without_holding_the_batch(sink: SmtpSink) -> None:
    channel = channel_for(sink, {"laposte.net": {"rate": 0.01}}, Clock())  # one message per 100 s
    try:
        results = channel.send([mail(1, "a@laposte.net"), mail(2, "b@laposte.net"), mail(3, "c@exemple.fr")])
        assert [r.outcome for r in results] == [Outcome.SENT, Outcome.DEFERRED, Outcome.SENT]
        assert "cadence du domaine laposte.net" in results[1].detail and results[1].retry_after > 90
        assert sink.received == 2
    finally:
        channel.close()


def test_the_policy_setting_overrides_the_shipped_table(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DECLIC_MAIL_DOMAIN_POLICY", '{"orange.fr": {"rate": 1}, "exemple.fr": {"connections": 3}}')
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    channel = SmtpChannel.from_settings(Settings())
    assert channel.gate.rule("orange.fr") == {**DOMAIN_POLICY["orange.fr"], "rate": 1}
    assert channel.gate.rule("wanadoo.fr") == DOMAIN_POLICY["wanadoo.fr"]
    assert channel.gate.rule("exemple.fr")["connections"] == 3
    assert channel.gate.rule("ailleurs.fr") == DOMAIN_POLICY["*"]
    assert channel.dkim is None  # no key configured: nothing signed
    with pytest.raises(ValueError, match="règle invalide"):
        load_domain_policy('{"orange.fr": {"vitesse": 3}}')


def test_a_dkim_signed_message_verifies_at_the_sink(sink: SmtpSink, tmp_path, monkeypatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "dkim.pem").write_bytes(pem)
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    monkeypatch.setenv("DECLIC_DKIM_KEY_FILE", str(tmp_path / "dkim.pem"))
    monkeypatch.setenv("DECLIC_DKIM_SELECTOR", "declic2026")
    monkeypatch.setenv("DECLIC_MAIL_DOMAIN", "mairie-exemple.fr")
    monkeypatch.setenv("DECLIC_SMTP_PORT", str(sink.port))
    channel = SmtpChannel.from_settings(Settings())
    asked = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    try:
        results = channel.send([mail(1, "boulangerie@exemple.fr")])
    finally:
        channel.close()
    assert results[0].outcome is Outcome.SENT
    raw = (tmp_path / "received" / "message-001.eml").read_bytes()
    assert raw.startswith(b"DKIM-Signature:") and b"d=mairie-exemple.fr" in raw and b"s=declic2026" in raw
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"declic2026._domainkey.mairie-exemple.fr."]
    # The signature covers what the owner reads: a changed subject or body no longer verifies.
    assert not dkim.verify(raw.replace(b"Subject: Un coup de main", b"Subject: Un autre sujet"), dnsfunc=dns)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert not dkim.verify(head + b"\r\n\r\n" + body.replace(b"Qm9uam91", b"Qm9uam92", 1), dnsfunc=dns)


def test_a_signer_covers_only_headers_present() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    data = b"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: x\r\n\r\nbody\r\n"
    signed = DkimSigner(key, "s1", "b.fr").sign(data)
    header = signed[: signed.index(b"From:")]
    assert b"h=from : to : subject" in header.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ") or \
        b"h=from:to:subject" in header.replace(b"\r\n", b"").replace(b" ", b"").replace(b"\t", b"")


def test_a_hard_refusal_in_the_dialogue_marks_the_address_refused(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_rcpt["Inconnu@Exemple.fr"] = "550 5.1.1 <inconnu@exemple.fr>: User unknown"
    smtp_sink.reject_rcpt["spam@exemple.fr"] = "550 5.7.1 Message rejected as spam"
    smtp_sink.reject_rcpt["pleine@exemple.fr"] = "552 5.2.2 Mailbox full"
    channel = SmtpChannel("127.0.0.1", smtp_sink.port, sender="Déclic <bonjour@declic.example>", timeout=5)
    try:
        results = channel.send([mail(1, "Inconnu@Exemple.fr"), mail(2, "spam@exemple.fr"),
                                mail(3, "pleine@exemple.fr"), mail(4, "ok@exemple.fr")])
    finally:
        channel.close()
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.SENT]
    # The unknown address only: a refused message (spam filter) or a full mailbox is not the address's fault.
    assert [r.address_refused for r in results] == [True, False, False, False]


def test_the_dispatcher_suppresses_an_address_refused_for_good(settings, engine, smtp_sink: SmtpSink) -> None:
    now = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    campaign_id = campaign(engine, "rebond-35", "35")
    ctx = context()
    ctx["sender"] = {"name": "Département d'Ille-et-Vilaine", "address": "1 avenue de la Préfecture, 35042 Rennes",
                     "email": "declic@ille-et-vilaine.example", "phone": "02 99 02 35 35"}  # as the planner writes it
    with engine.begin() as conn:
        _, unknown = enrol(conn, campaign_id, business(conn, "35238"), status="planned", at=now, ctx=ctx)
        _, later = enrol(conn, campaign_id, business(conn, "35238"), status="planned", ctx=ctx,
                         at=now + dt.timedelta(days=1))
        conn.execute(MESSAGES.update().where(MESSAGES.c.id.in_([unknown, later]))
                     .values(recipient="inconnu@exemple.fr"))
    smtp_sink.reject_rcpt["inconnu@exemple.fr"] = "550 5.1.1 <inconnu@exemple.fr>: User unknown"
    app = bootstrap(settings, clock=lambda: now)
    try:
        assert dispatch_batch(app, now=now)["failed"] == 1
    finally:
        app.close()
    with engine.connect() as conn:
        assert suppressed_among(conn, "email", ["inconnu@exemple.fr"]) == {"inconnu@exemple.fr"}
        row = conn.execute(select(Suppression.__table__)).one()
        statuses = dict(conn.execute(select(MESSAGES.c.id, MESSAGES.c.status)).all())
    assert (row.reason, row.source) == ("bounce", "smtp")
    assert statuses == {unknown: "failed", later: "cancelled"}  # the next message to that address never leaves

