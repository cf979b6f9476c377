"""E-mail over SMTP (smtplib): a few connections kept open and used at once, replies classified.

Settings (read by the composition root): DECLIC_SMTP_HOST, DECLIC_SMTP_PORT, DECLIC_SMTP_STARTTLS,
DECLIC_SMTP_USER, DECLIC_SMTP_PASSWORD, DECLIC_SMTP_TIMEOUT, DECLIC_SMTP_CONNECTIONS, DECLIC_MAIL_FROM,
DECLIC_MAIL_DOMAIN.

Who the e-mail is from: the campaign's sender (`campaign.spec["sender"]`, read from the store once per batch),
never a global name. The From display name is the sender's name; its address is the campaign's own
(`sender.mail_from`), else `<slug of the owner>@DECLIC_MAIL_DOMAIN` ("Département d'Ille-et-Vilaine" ->
`departement-d-ille-et-vilaine@...`), else DECLIC_MAIL_FROM's address. Reply-To is `sender.reply_to`, else the
sender's contact address (`sender.email`). DECLIC_MAIL_FROM stays the From of messages without a campaign and
the envelope sender (MAIL FROM, where bounces return to the bounce mailbox).

Exactly once: the message body is streamed inside DATA, then `on_handoff` records the send, and only
then the final "." is written. A crash before the "." leaves nothing at the server (an SMTP server
discards an unfinished DATA) and the outbox row still claimed, so it is sent again later; a crash after
it leaves the row marked sent. The window in between is one small write per open connection: a crash
exactly there loses that message rather than sending it twice.

Speed: a batch is shared by `connections` threads, each with its own SMTP connection kept between
batches (while one waits for the server, another builds its next message); the envelope and DATA go
out in one write when the server offers PIPELINING (RFC 2920); the MIME text is written by hand
(headers, base64 parts encoded in C) instead of through the `email` package, which cost more than the
whole SMTP exchange.

Replies are classified with their enhanced status code (`integrations.email_bounce`): 2xx sent, 4xx and
a full mailbox (5.2.2) transient, other 5xx permanent; the detail says it in French, then as the server
wrote it. When the server cannot be reached at all, the rest of the batch is answered TRANSIENT at once
instead of waiting for one connection timeout per message. Bounces that arrive later as e-mails are
read by `integrations.email_bounce.parse_dsn`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import smtplib
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from functools import lru_cache

from integrations._settings import setting, store_engine
from integrations.base import Answer, Handoff, Outcome, OutgoingMessage, SendResult, answered, register
from integrations.email_bounce import classify_reply, describe_reply
from orchestrator.settings import reveal

__all__ = ["SmtpChannel", "build_email", "classify_reply", "describe_reply"]

_LEADING_DOT = re.compile(rb"(?m)^\.")
_NEWLINES = re.compile(r"[\r\n]+")
# RCPT replies that accept the recipient (252: cannot verify but will try, RFC 5321 3.5.3).
RCPT_OK = (250, 251, 252)


def encode_header(text: str) -> str:
    """RFC 2047 encoded-words for non-ASCII header text, whole characters per word (at most 45 bytes each),
    cut after a space where there is one: a reader that keeps the folding whitespace between encoded-words
    (Python's own parser does, in display names) then shows a double space, never a word cut in two."""
    if text.isascii():
        return text
    words, chunk = [], b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 45:
            cut = chunk.rfind(b" ") + 1 or len(chunk)
            words.append(chunk[:cut])
            chunk = chunk[cut:]
        chunk += data
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _one_line(value: str) -> str:
    # A header value never carries a line break of its own (no header injection from a template).
    return _NEWLINES.sub(" ", value).strip()


def _base64_lines(text: str) -> bytes:
    # Text in canonical form (CRLF line breaks, RFC 2045 6.8), then 76-character lines; binascii works in C.
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return b"".join(
        binascii.b2a_base64(data[i : i + 57]).replace(b"\n", b"\r\n") for i in range(0, len(data), 57)
    )


def _part(text: str, subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode(
            "ascii"
        )
        + _base64_lines(text)
    )


@lru_cache(maxsize=256)
def _header_text(value: str) -> str:
    # Subjects and senders repeat across a campaign: encode each once.
    return encode_header(_one_line(value))


@lru_cache(maxsize=16)
def _from_line(sender: str) -> str:
    name, _, address = sender.rpartition(" <")
    return f"From: {_header_text(name)} <{address}" if name else f"From: {_one_line(sender)}"


def _date_line() -> str:
    # formatdate() costs more than the rest of the headers; the text only changes once a second.
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[:] = [now, f"Date: {formatdate(now, localtime=False)}"]
    return _DATE[1]


_DATE: list = [0, ""]


def slug(text: str) -> str:
    """A mailbox name from a name: ASCII, lower case, words joined by "-" ("Ville d'Aubenas" -> "ville-d-aubenas")."""
    text = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    bare = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", bare).strip("-")[:64].strip("-") or "contact"


def identity(spec: Mapping | None, default_from: str, domain: str | None = None) -> tuple[str, str | None]:
    """(From, Reply-To) of a campaign's messages from its spec (see the module docstring); the default From
    and no Reply-To when the spec has no sender."""
    sender = (spec or {}).get("sender") or {}
    name = _one_line(str(sender.get("name") or ""))
    if not name:
        return default_from, None
    owner = _one_line(str(((spec or {}).get("owner") or {}).get("name") or name))
    address = sender.get("mail_from") or (f"{slug(owner)}@{domain}" if domain else _address(default_from))
    reply_to = sender.get("reply_to") or sender.get("email") or None
    return f"{name.replace('<', '').replace('>', '')} <{address}>", reply_to


def build_email(msg: OutgoingMessage, sender: str, reply_to: str | None = None) -> bytes:
    """The wire bytes (CRLF lines): text (and html) body in base64, stable Message-ID, extra headers."""
    headers = [
        _from_line(sender),
        f"To: {_one_line(msg.recipient)}",
        f"Subject: {_header_text(msg.subject)}",
        _date_line(),
        f"Message-ID: {_one_line(msg.rfc_message_id)}",
        "MIME-Version: 1.0",
    ]
    if reply_to:
        headers.append(f"Reply-To: {_one_line(reply_to)}")
    headers += [f"{_one_line(key)}: {_header_text(value)}" for key, value in msg.headers.items()]
    if msg.html_body:
        # "=_" never occurs in base64 text, so the boundary cannot collide with a part.
        boundary = f"=_declic_{msg.message_id}_{os.urandom(6).hex()}"
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        mark = f"--{boundary}\r\n".encode("ascii")
        body = (
            mark
            + _part(msg.body, "plain")
            + mark
            + _part(msg.html_body, "html")
            + f"--{boundary}--\r\n".encode("ascii")
        )
        return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + body
    return ("\r\n".join(headers) + "\r\n").encode("utf-8") + _part(msg.body, "plain")


class _Batch:
    """What the threads sending one batch share: the next message to take, and whether the server is down."""

    def __init__(self, messages: Sequence[OutgoingMessage]) -> None:
        self.messages = messages
        self.results: list[SendResult | None] = [None] * len(messages)
        self.unreachable = ""
        self.identities: dict[object, tuple[str, str | None]] = {}
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.messages):
                return None
            self._next += 1
            return self._next - 1


class _Refused(Exception):
    """A reply that ends one message's transaction (the connection may be reused unless it was 421)."""

    def __init__(self, code: int, reply: bytes) -> None:
        super().__init__(code, reply)
        self.code, self.reply = code, reply


class SmtpChannel:
    """The e-mail channel."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        connections: int = 1,
        mail_domain: str | None = None,
        engine: object = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.mail_domain, self.engine = mail_domain, engine
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout
        self.connections = max(1, connections)
        self._envelope_from = f"MAIL FROM:<{_address(sender)}>"
        self._idle: list[smtplib.SMTP] = []  # connections kept open between batches
        self._idle_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings, clock=None, engine=None) -> SmtpChannel:
        """The channel configured from `DECLIC_SMTP_*` (clock and engine accepted like every channel's)."""
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.mail_from,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=reveal(settings.smtp_password),
            timeout=settings.smtp_timeout,
            connections=getattr(settings, "smtp_connections", 1),
            mail_domain=setting(settings, "mail_domain"),
            engine=store_engine(settings, engine),
        )

    def identities(self, batch: Sequence[OutgoingMessage]) -> dict[object, tuple[str, str | None]]:
        """(From, Reply-To) per campaign id of the batch, from the campaigns' specs in the store (one query)."""
        wanted = {m.meta.get("campaign_id") for m in batch} - {None}
        if not wanted or self.engine is None:
            return {}
        from sqlalchemy import select

        from store.models import Campaign

        table = Campaign.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.id, table.c.spec).where(table.c.id.in_(wanted))).all()
        return {cid: identity(spec, self.sender, self.mail_domain) for cid, spec in rows}

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Send a batch over up to `connections` connections at once; one result per message, in order."""
        shared = _Batch(batch)
        try:
            shared.identities = self.identities(batch)
        except Exception as exc:  # noqa: BLE001 (the store is unreachable: the batch waits, never a wrong sender)
            detail = f"expéditeur de la campagne illisible : {exc}"
            return [SendResult(m.message_id, Outcome.TRANSIENT, detail) for m in batch]
        workers = min(self.connections, len(batch))
        if workers <= 1:
            self._work(shared, on_handoff, on_answer)
        else:
            threads = [
                threading.Thread(target=self._work, args=(shared, on_handoff, on_answer), daemon=True)
                for _ in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return [
            r if r is not None else SendResult(m.message_id, Outcome.TRANSIENT, "envoi interrompu")
            for r, m in zip(shared.results, batch, strict=True)
        ]

    def _work(self, shared: _Batch, on_handoff: Handoff | None, on_answer: Answer | None = None) -> None:
        # One thread, one connection: take the next message until the batch is done.
        smtp = self._take_idle()
        try:
            while (index := shared.take()) is not None:
                msg = shared.messages[index]
                if shared.unreachable:
                    shared.results[index] = SendResult(msg.message_id, Outcome.TRANSIENT, shared.unreachable)
                    continue
                if smtp is None:
                    try:
                        smtp = self._open()
                    except smtplib.SMTPResponseException as exc:  # greeting, STARTTLS or AUTH refused
                        shared.unreachable = "connexion SMTP refusée : " + describe_reply(
                            exc.smtp_code, exc.smtp_error
                        )
                    except (smtplib.SMTPException, OSError) as exc:
                        shared.unreachable = f"serveur SMTP injoignable : {exc}"
                    if smtp is None:
                        shared.results[index] = SendResult(
                            msg.message_id, Outcome.TRANSIENT, shared.unreachable
                        )
                        continue
                try:
                    result, keep = self._attempt(smtp, msg, on_handoff, shared)
                except Exception as exc:  # noqa: BLE001 (a bug must not leave a connection inside DATA for reuse)
                    detail = f"erreur pendant l'envoi : {exc}"
                    result, keep = SendResult(msg.message_id, Outcome.TRANSIENT, detail), False
                shared.results[index] = answered(result, on_answer)
                if not keep:
                    _close(smtp)
                    smtp = None
        finally:
            if smtp is not None:
                with self._idle_lock:
                    self._idle.append(smtp)

    def _take_idle(self) -> smtplib.SMTP | None:
        with self._idle_lock:
            return self._idle.pop() if self._idle else None

    def _open(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            # The body and the final "." go out as two writes (the handoff sits between them): without
            # TCP_NODELAY, Nagle's algorithm holds the second one until the peer's delayed ACK (~40 ms).
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            _close(smtp)
            raise
        return smtp

    def _attempt(
        self, smtp: smtplib.SMTP, msg: OutgoingMessage, on_handoff: Handoff | None, shared: _Batch | None = None
    ) -> tuple[SendResult, bool]:
        """One message on one connection: its result and whether the connection can be reused."""
        try:
            return self._send_one(smtp, msg, on_handoff, shared)
        except _Refused as exc:
            keep = exc.code != 421  # the server is closing the session: a new connection for the next one
            if keep:
                try:
                    smtp.rset()
                except (smtplib.SMTPException, OSError):
                    keep = False
            return SendResult(
                msg.message_id, classify_reply(exc.code, exc.reply), describe_reply(exc.code, exc.reply)
            ), keep
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            return SendResult(msg.message_id, Outcome.TRANSIENT, f"connexion SMTP perdue : {exc}"), False
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                msg.message_id,
                classify_reply(exc.smtp_code, exc.smtp_error),
                describe_reply(exc.smtp_code, exc.smtp_error),
            ), False
        except (UnicodeError, ValueError) as exc:  # an address or header the wire cannot carry
            return SendResult(
                msg.message_id, Outcome.PERMANENT, f"adresse ou message impossible à envoyer : {exc}"
            ), False

    def _send_one(
        self, smtp: smtplib.SMTP, msg: OutgoingMessage, on_handoff: Handoff | None, shared: _Batch | None = None
    ) -> tuple[SendResult, bool]:
        found = shared.identities.get(msg.meta.get("campaign_id")) if shared is not None else None
        sender, reply_to = found or (self.sender, None)
        data = build_email(msg, sender, reply_to)
        rcpt = f"RCPT TO:<{msg.recipient}>"
        if smtp.does_esmtp and smtp.has_extn("pipelining"):
            # One write for the envelope and DATA, then the three replies in order (RFC 2920).
            smtp.send(f"{self._envelope_from}\r\n{rcpt}\r\nDATA\r\n")
            replies = []
            for _command in ("MAIL", "RCPT", "DATA"):
                code, reply = smtp.getreply()
                replies.append((code, reply))
                if code == 421:
                    raise _Refused(code, reply)
            (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = replies
            if data_code == 354 and (mail_code != 250 or rcpt_code not in RCPT_OK):
                # A server that opened DATA after refusing the envelope: hang up, it discards the message.
                failed = (mail_code, mail_reply) if mail_code != 250 else (rcpt_code, rcpt_reply)
                return SendResult(msg.message_id, classify_reply(*failed), describe_reply(*failed)), False
            for code, reply, ok in (
                (mail_code, mail_reply, (250,)),
                (rcpt_code, rcpt_reply, RCPT_OK),
                (data_code, data_reply, (354,)),
            ):
                if code not in ok:
                    raise _Refused(code, reply)
        else:
            for command, ok in ((self._envelope_from, (250,)), (rcpt, RCPT_OK), ("DATA", (354,))):
                code, reply = smtp.docmd(command)
                if code not in ok:
                    raise _Refused(code, reply)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        if on_handoff is not None and not on_handoff(msg.message_id):
            # Closing inside DATA makes the server discard the message.
            return SendResult(
                msg.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie"
            ), False
        smtp.send(b".\r\n")
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The "." left: the server has most likely queued the message. Sending it again could deliver
            # it twice, which the owner would see; the send stays recorded, flagged as unconfirmed.
            return SendResult(
                msg.message_id,
                Outcome.SENT,
                f"remis au serveur, accusé de réception perdu ({exc}) : pas de nouvel envoi",
            ), False
        text = reply.decode(errors="replace")
        outcome = classify_reply(code, reply)
        detail = f"{code} {text}" if outcome is Outcome.SENT else describe_reply(code, reply)
        return (
            SendResult(
                msg.message_id, outcome, detail, provider_id=text[:200] if outcome is Outcome.SENT else ""
            ),
            code != 421,
        )

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for smtp in idle:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            _close(smtp)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass


def _address(sender: str) -> str:
    """The bare address of "Name <addr>"."""
    match = re.search(r"<([^>]+)>", sender)
    return match[1] if match else sender


register("email", SmtpChannel.from_settings)
