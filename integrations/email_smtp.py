"""E-mail over SMTP (smtplib): one connection reused for a batch, replies classified.

Settings (read by the composition root): DECLIC_SMTP_HOST, DECLIC_SMTP_PORT, DECLIC_SMTP_STARTTLS,
DECLIC_SMTP_USER, DECLIC_SMTP_PASSWORD, DECLIC_SMTP_TIMEOUT, DECLIC_MAIL_FROM.

Exactly once: the message body is streamed inside DATA, then `on_handoff` records the send, and only
then the final "." is written. A crash before the "." leaves nothing at the server (an SMTP server
discards an unfinished DATA) and the outbox row still claimed, so it is sent again later; a crash after
it leaves the row marked sent. The window in between is one small write.

Replies are classified with their enhanced status code (`integrations.email_bounce`): 2xx sent, 4xx and
a full mailbox (5.2.2) transient, other 5xx permanent; the detail says it in French, then as the server
wrote it. When the server cannot be reached at all, the rest of the batch is answered TRANSIENT at once
instead of waiting for one connection timeout per message. Bounces that arrive later as e-mails are
read by `integrations.email_bounce.parse_dsn`.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
import base64
from email.charset import Charset
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formatdate

from integrations.base import Handoff, OutgoingMessage, Outcome, SendResult, register
from integrations.email_bounce import classify_reply, describe_reply

__all__ = ["SmtpChannel", "build_email", "classify_reply", "describe_reply"]

_LEADING_DOT = re.compile(rb"(?m)^\.")
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)  # encoded words stay whole, no refolding
_UTF8 = Charset("utf-8")  # base64 bodies: 7-bit safe and encoded in C (quoted-printable is pure Python)


def encode_header(text: str) -> str:
    """RFC 2047 encoded-words for non-ASCII header text, whole characters per word (at most 45 bytes each)."""
    if text.isascii():
        return text
    words, chunk = [], b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 45:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)
# RCPT replies that accept the recipient (252: cannot verify but will try, RFC 5321 3.5.3).
RCPT_OK = (250, 251, 252)


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, charset=_UTF8)
    return part


def build_email(msg: OutgoingMessage, sender: str) -> bytes:
    """The wire bytes: text (and html) body, stable Message-ID, one-click unsubscribe headers.

    Built with the compat32 API: several times faster than EmailMessage's header refolding, which
    dominated the send rate.
    """
    if msg.html_body:
        em = MIMEMultipart("alternative")
        em.attach(_text_part(msg.body, "plain"))
        em.attach(_text_part(msg.html_body, "html"))
    else:
        em = _text_part(msg.body, "plain")
    name, _, address = sender.rpartition(" <")
    em["From"] = f"{encode_header(name)} <{address}" if name else sender
    em["To"] = msg.recipient
    em["Subject"] = encode_header(msg.subject)
    em["Date"] = formatdate(localtime=False)
    em["Message-ID"] = msg.rfc_message_id
    for header, value in msg.headers.items():
        em[header] = value
    return em.as_bytes(policy=_WIRE)


class SmtpChannel:
    """The e-mail channel."""

    name = "email"

    def __init__(self, host: str, port: int, *, sender: str, starttls: bool = False, user: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings) -> SmtpChannel:
        return cls(settings.smtp_host, settings.smtp_port, sender=settings.mail_from,
                   starttls=settings.smtp_starttls, user=settings.smtp_user, password=settings.smtp_password,
                   timeout=settings.smtp_timeout)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            # The body and the final "." go out as two writes (the handoff sits between them): without
            # TCP_NODELAY, Nagle's algorithm holds the second one until the peer's delayed ACK (~40 ms).
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            self._smtp = smtp
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None) -> list[SendResult]:
        """Send a batch over one connection; one result per message, in order."""
        results = []
        unreachable = ""
        for msg in batch:
            if unreachable:
                results.append(SendResult(msg.message_id, Outcome.TRANSIENT, unreachable))
                continue
            try:
                smtp = self._connection()
            except smtplib.SMTPResponseException as exc:  # greeting, STARTTLS or AUTH refused
                self._drop()
                unreachable = "connexion SMTP refusée : " + describe_reply(exc.smtp_code, exc.smtp_error)
                results.append(SendResult(msg.message_id, Outcome.TRANSIENT, unreachable))
                continue
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                unreachable = f"serveur SMTP injoignable : {exc}"
                results.append(SendResult(msg.message_id, Outcome.TRANSIENT, unreachable))
                continue
            try:
                results.append(self._send_one(smtp, msg, on_handoff))
            except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, OSError) as exc:
                self._drop()
                results.append(SendResult(msg.message_id, Outcome.TRANSIENT, f"connexion SMTP perdue : {exc}"))
            except smtplib.SMTPResponseException as exc:
                self._drop()
                results.append(SendResult(msg.message_id, classify_reply(exc.smtp_code, exc.smtp_error),
                                          describe_reply(exc.smtp_code, exc.smtp_error)))
        return results

    def _refused(self, smtp: smtplib.SMTP, msg: OutgoingMessage, code: int, reply: bytes) -> SendResult:
        if code == 421:  # the server is closing the session: a new connection for the next message
            self._drop()
        else:
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        return SendResult(msg.message_id, classify_reply(code, reply), describe_reply(code, reply))

    def _send_one(self, smtp: smtplib.SMTP, msg: OutgoingMessage, on_handoff: Handoff | None) -> SendResult:
        data = build_email(msg, self.sender)
        for command, ok in ((f"MAIL FROM:<{_address(self.sender)}>", (250,)),
                            (f"RCPT TO:<{msg.recipient}>", RCPT_OK)):
            code, reply = smtp.docmd(command)
            if code not in ok:
                return self._refused(smtp, msg, code, reply)
        code, reply = smtp.docmd("DATA")
        if code != 354:
            return self._refused(smtp, msg, code, reply)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        if on_handoff is not None and not on_handoff(msg.message_id):
            self._drop()  # closing inside DATA makes the server discard the message
            return SendResult(msg.message_id, Outcome.ABANDONED, "bail perdu: un autre processus l'envoie")
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        text = reply.decode(errors="replace")
        if code == 421:
            self._drop()
        outcome = classify_reply(code, reply)
        detail = f"{code} {text}" if outcome is Outcome.SENT else describe_reply(code, reply)
        return SendResult(msg.message_id, outcome, detail, provider_id=text[:200] if outcome is Outcome.SENT else "")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None


def _address(sender: str) -> str:
    """The bare address of "Name <addr>"."""
    match = re.search(r"<([^>]+)>", sender)
    return match[1] if match else sender


register("email", SmtpChannel.from_settings)
