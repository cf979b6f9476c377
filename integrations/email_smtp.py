"""E-mail over SMTP (smtplib): a few connections kept open and used at once, replies classified.

Settings (read by the composition root): DECLIC_SMTP_HOST, DECLIC_SMTP_PORT, DECLIC_SMTP_STARTTLS,
DECLIC_SMTP_USER, DECLIC_SMTP_PASSWORD, DECLIC_SMTP_TIMEOUT, DECLIC_SMTP_CONNECTIONS, DECLIC_MAIL_FROM,
DECLIC_MAIL_DOMAIN.

Who the e-mail is from: the campaign's sender (`campaign.spec["sender"]`, which the dispatcher puts on each
message as `OutgoingMessage.campaign`), never a global name. The From display name is the sender's name; its
address is the campaign's own (`sender.mail_from`), else `<slug of the owner>@DECLIC_MAIL_DOMAIN` ("Département
d'Ille-et-Vilaine" -> `departement-d-ille-et-vilaine@...`), else DECLIC_MAIL_FROM's address. Reply-To is
`sender.reply_to`, else the sender's contact address (`sender.email`). DECLIC_MAIL_FROM stays the From of
messages without a campaign and the envelope sender (MAIL FROM, where bounces return to the bounce mailbox).

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

Recipient domains (issue 18): a per-domain policy (`DOMAIN_POLICY`, overridden by DECLIC_MAIL_DOMAIN_POLICY) caps
the messages of one domain on the wire at once (`connections`) and their pace (`rate`, messages per second). A
thread takes the next message whose domain may go now, so a slow domain never holds the others; a message whose
domain would make it wait more than `PACE_HORIZON` seconds is answered TRANSIENT with that wait as retry_after.
A domain that answers 421 (or, for a domain of the table, another temporary refusal with a 4.7.x status, how
large providers throttle a sender) is paused for its `backoff` (doubled at each refusal in a row, at most an
hour): its messages are answered TRANSIENT with the remaining pause as retry_after, without touching the wire,
while the other domains go on.
A refusal of the address for good in the SMTP dialogue (550 5.1.1) is answered `address_refused`: the dispatcher
suppresses the address, as a bounce report does.

DKIM (RFC 6376, dkimpy): with DECLIC_DKIM_KEY_FILE and DECLIC_DKIM_SELECTOR, every message is signed (relaxed/
relaxed, rsa-sha256; From, To, Subject, Date, Message-ID, MIME and content headers, Reply-To and
List-Unsubscribe when present) for DECLIC_DKIM_DOMAIN, else DECLIC_MAIL_DOMAIN, else the domain of
DECLIC_MAIL_FROM. French providers (Orange, Free, SFR, La Poste) and Gmail file unsigned bulk mail as spam.

Replies are classified with their enhanced status code (`integrations.email_bounce`): 2xx sent, 4xx and
a full mailbox (5.2.2) transient, other 5xx permanent; the detail says it in French, then as the server
wrote it. When the server cannot be reached at all, the rest of the batch is answered TRANSIENT at once
instead of waiting for one connection timeout per message. Bounces that arrive later as e-mails are
read by `integrations.email_bounce.parse_dsn`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import smtplib
import socket
import ssl
import struct
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from email.utils import formatdate
from functools import lru_cache

from integrations._settings import setting
from integrations.base import Answer, Handoff, OutgoingMessage, answered, register
from integrations.email_bounce import classify_reply, describe_reply, enhanced_status, hard_address_refusal
from orchestrator.core.outcomes import Outcome, SendResult

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
    if "\n" not in value and "\r" not in value:  # nearly always: no regex pass
        return value.strip()
    return _NEWLINES.sub(" ", value).strip()


def _base64_lines(text: str) -> bytes:
    # Text in canonical form (CRLF line breaks, RFC 2045 6.8), encoded at once in C, then cut into 76-character
    # lines (57 bytes each: a multiple of 3, so the lines are what encoding each 57-byte piece would give).
    if "\r" in text:
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    else:  # the usual text: "\n" is one byte in UTF-8, so the bytes are replaced in one C pass after encoding
        data = text.encode("utf-8").replace(b"\n", b"\r\n")
    encoded = binascii.b2a_base64(data, newline=False)
    full = len(encoded) // 76
    lines = list(_lines_of(full).unpack_from(encoded))  # the full lines cut in C (a third of a slice per line)
    if len(encoded) % 76:
        lines.append(encoded[full * 76 :])
    lines.append(b"")
    return b"\r\n".join(lines)


@lru_cache(maxsize=1024)
def _lines_of(count: int) -> struct.Struct:
    """A reader of `count` 76-byte lines."""
    return struct.Struct("76s" * count)


def _part(text: str, subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode(
            "ascii"
        )
        + _base64_lines(text)
    )


def _header_text(value: str) -> str:
    if value.isascii() and "\n" not in value and "\r" not in value:
        return value.strip()  # what the encoding gives for plain ASCII (each message's own List-Unsubscribe)
    return _encoded_header(value)


@lru_cache(maxsize=256)
def _encoded_header(value: str) -> str:
    # Subjects and senders repeat across a campaign: encode each once.
    return encode_header(_one_line(value))


@lru_cache(maxsize=16)
def _from_line(sender: str) -> str:
    name, _, address = sender.rpartition(" <")
    return f"From: {_header_text(name)} <{address}" if name else f"From: {_one_line(sender)}"


def _date_line() -> str:
    # formatdate() costs more than the rest of the headers; the text only changes once a second. The wall clock,
    # not the App's: the Date of the wire message is when it really leaves (a fixed demo clock would date it in the
    # future, which receiving servers score as spam).
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[:] = [now, f"Date: {formatdate(now, localtime=False)}"]
    return _DATE[1]


_DATE: list = [0, ""]
_BOUNDARY_SALT = os.urandom(6).hex()


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
        # "=_" never occurs in base64 text, so the boundary cannot collide with a part; the random part is drawn
        # once per process (a system call per message cost more than the rest of the headers).
        boundary = f"=_declic_{msg.message_id}_{_BOUNDARY_SALT}"
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


# What the large French mailbox providers (and Gmail, Microsoft, Yahoo) accept from a sender without a long
# reputation: few messages at once, a steady pace, a pause after a temporary refusal. Conservative starting
# points, to be tuned per deployment with DECLIC_MAIL_DOMAIN_POLICY; "*" is every other domain (no limit).
# rate: messages per second; connections: messages of the domain on the wire at once; backoff: first pause (s).
_ORANGE = {"rate": 5.0, "connections": 2, "backoff": 300}
_SFR = {"rate": 5.0, "connections": 2, "backoff": 300}
_MICROSOFT = {"rate": 10.0, "connections": 2, "backoff": 300}
_YAHOO = {"rate": 10.0, "connections": 2, "backoff": 300}
DOMAIN_POLICY: dict[str, dict] = {
    "*": {"rate": None, "connections": None, "backoff": 60},
    "orange.fr": _ORANGE, "wanadoo.fr": _ORANGE,
    "free.fr": {"rate": 5.0, "connections": 2, "backoff": 300},
    "sfr.fr": _SFR, "neuf.fr": _SFR,
    "laposte.net": {"rate": 3.0, "connections": 1, "backoff": 600},
    "gmail.com": {"rate": 20.0, "connections": 4, "backoff": 120},
    "hotmail.fr": _MICROSOFT, "hotmail.com": _MICROSOFT, "outlook.fr": _MICROSOFT, "outlook.com": _MICROSOFT,
    "live.fr": _MICROSOFT,
    "yahoo.fr": _YAHOO, "yahoo.com": _YAHOO,
}
PACE_HORIZON = 10.0  # seconds a message may wait for its domain's pace inside a batch; beyond, it is deferred
MAX_BACKOFF = 3600.0


def unpaced_policy() -> str:
    """DECLIC_MAIL_DOMAIN_POLICY for a loopback sink (tests, benchmarks): no provider's pace or cap, since
    synthetic addresses use Orange, Free, Gmail... domains that the sink is not."""
    return json.dumps({domain: {"rate": None, "connections": None} for domain in DOMAIN_POLICY})


def load_domain_policy(override: str | Mapping | None = None) -> dict[str, dict]:
    """The shipped table with DECLIC_MAIL_DOMAIN_POLICY (JSON text or a mapping) laid over it, per domain."""
    policy = {domain: dict(rule) for domain, rule in DOMAIN_POLICY.items()}
    if override:
        given = json.loads(override) if isinstance(override, str) else override
        if not isinstance(given, Mapping):
            raise ValueError("DECLIC_MAIL_DOMAIN_POLICY : un objet JSON est attendu")
        for domain, rule in given.items():
            if not isinstance(rule, Mapping) or set(rule) - {"rate", "connections", "backoff"}:
                raise ValueError(f"DECLIC_MAIL_DOMAIN_POLICY : règle invalide pour {domain}")
            policy.setdefault(domain.lower(), {}).update(rule)
    return policy


@dataclass
class _DomainState:
    busy: int = 0  # messages of the domain on the wire now
    next_at: float = 0.0  # monotonic time before which the next one may not start (its pace)
    paused_until: float = 0.0  # monotonic time of the end of a pause after a temporary refusal
    refusals: int = 0  # temporary refusals in a row


class DomainGate:
    """Per recipient domain: how many messages are on the wire, when the next may start, pauses after refusals.
    Shared by every thread and batch of one channel (a pause outlives the batch that caused it)."""

    def __init__(self, policy: Mapping[str, Mapping], clock=time.monotonic) -> None:
        self.policy, self.clock = policy, clock
        self._states: dict[str, _DomainState] = {}
        self._rules: dict[str, dict] = {}  # each domain's rule, merged once (twice per message otherwise)
        self._lock = threading.Lock()

    def rule(self, domain: str) -> dict:
        return {**self.policy["*"], **self.policy.get(domain, {})}

    def _rule(self, domain: str) -> dict:
        found = self._rules.get(domain)
        if found is None:
            found = self._rules[domain] = self.rule(domain)
        return found

    def start(self, domain: str) -> tuple[str, float]:
        """("go", 0) and the slot taken; ("wait", seconds) for the pace or a free slot; ("paused", seconds left)."""
        rule = self._rule(domain)
        with self._lock:
            now = self.clock()
            state = self._states.setdefault(domain, _DomainState())
            if now < state.paused_until:
                return "paused", state.paused_until - now
            if rule["connections"] and state.busy >= rule["connections"]:
                return "wait", 0.0
            if rule["rate"] and now < state.next_at:
                return "wait", state.next_at - now
            state.busy += 1
            if rule["rate"]:
                state.next_at = max(now, state.next_at) + 1.0 / rule["rate"]
            return "go", 0.0

    def done(self, domain: str, refused: bool) -> None:
        """One message of the domain left the wire; `refused`: the domain refused it for now (pause it)."""
        rule = self._rule(domain)
        with self._lock:
            state = self._states.setdefault(domain, _DomainState())
            state.busy = max(0, state.busy - 1)
            if refused:
                state.refusals += 1
                pause = min(float(rule["backoff"] or 60) * 2 ** (state.refusals - 1), MAX_BACKOFF)
                state.paused_until = max(state.paused_until, self.clock() + pause)
            else:
                state.refusals = 0

    def paused(self, domain: str) -> float:
        """Seconds left of the domain's pause (0 when it may send)."""
        with self._lock:
            state = self._states.get(domain)
            return max(0.0, state.paused_until - self.clock()) if state else 0.0


def recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


def domain_refusal(code: int | None, reply: bytes | str = b"", listed: bool = False) -> bool:
    """A temporary refusal of the domain, that pauses it: 421 always; for a domain of the policy table (a large
    provider, whose 4.7.x "try later", "rate limited" throttle a sender) a 4xx with a 4.7.x status too. Other 4xx
    are one recipient's (greylisting, a full mailbox) or the relay's own state (4.3.x: under maintenance): that
    message only is retried. A lost connection (no code) is the relay's, not the domain's."""
    if code is None or not 400 <= code < 500:
        return False
    return code == 421 or (listed and enhanced_status(reply).startswith("4.7."))


class DkimSigner:
    """Signs wire bytes with DKIM (dkimpy), the private key read once."""

    HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
               b"reply-to", b"list-unsubscribe", b"list-unsubscribe-post")

    def __init__(self, key: bytes, selector: str, domain: str) -> None:
        import dkim  # dkimpy (about 50 ms to import, measured) only loaded when a key is configured

        self._dkim, self.key = dkim, key
        self.selector, self.domain = selector.encode("ascii"), domain.encode("ascii")

    @classmethod
    def from_settings(cls, settings) -> DkimSigner | None:
        key_file, selector = setting(settings, "dkim_key_file"), setting(settings, "dkim_selector")
        if not key_file or not selector:
            return None
        domain = (setting(settings, "dkim_domain") or setting(settings, "mail_domain")
                  or _address(settings.mail_from).rpartition("@")[2])
        return cls(open(key_file, "rb").read(), selector, domain)

    def sign(self, data: bytes) -> bytes:
        present = {line.split(b":", 1)[0].strip().lower() for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
        signature = self._dkim.sign(data, self.selector, self.domain, self.key,
                                    canonicalize=(b"relaxed", b"relaxed"),
                                    include_headers=[h for h in self.HEADERS if h in present])
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + data


class _Batch:
    """What the threads sending one batch share: the next message to take, and whether the server is down."""

    def __init__(self, messages: Sequence[OutgoingMessage], gate: DomainGate | None = None) -> None:
        self.messages = messages
        self.results: list[SendResult | None] = [None] * len(messages)
        self.unreachable = ""
        self.identities: dict[object, tuple[str, str | None]] = {}
        self.gate = gate
        self._pending = list(range(len(messages)))
        self._lock = threading.Lock()

    def take(self) -> tuple[int, str, float] | None:
        """(index, verdict, seconds) of the next message whose domain may go now ("go"), or that must be
        deferred ("paused": its domain's pause; "pace": its pace); None when every message was taken."""
        while True:
            with self._lock:
                if not self._pending:
                    return None
                if self.gate is None:
                    return self._pending.pop(0), "go", 0.0
                shortest = None
                for at, index in enumerate(self._pending):
                    verdict, seconds = self.gate.start(recipient_domain(self.messages[index].recipient))
                    if verdict == "wait":
                        if seconds > PACE_HORIZON:
                            del self._pending[at]
                            return index, "pace", seconds
                        shortest = seconds if shortest is None else min(shortest, seconds)
                        continue
                    del self._pending[at]
                    return index, verdict, seconds
            time.sleep(min(max(shortest or 0.0, 0.002), 0.05))  # every pending domain is at its limit


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
        domain_policy: Mapping[str, Mapping] | None = None,
        dkim: DkimSigner | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.mail_domain = mail_domain
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout
        self.connections = max(1, connections)
        self._envelope_from = f"MAIL FROM:<{_address(sender)}>"
        self._idle: list[smtplib.SMTP] = []  # connections kept open between batches
        self._idle_lock = threading.Lock()
        self.gate = DomainGate(domain_policy if domain_policy is not None else load_domain_policy())
        self.dkim = dkim

    @classmethod
    def from_settings(cls, settings, clock=None) -> SmtpChannel:
        """The channel configured from `DECLIC_SMTP_*` (the clock accepted like every channel's)."""
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.mail_from,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=setting(settings, "smtp_password"),
            timeout=settings.smtp_timeout,
            connections=getattr(settings, "smtp_connections", 1),
            mail_domain=setting(settings, "mail_domain"),
            domain_policy=load_domain_policy(setting(settings, "mail_domain_policy")),
            dkim=DkimSigner.from_settings(settings),
        )

    def identities(self, batch: Sequence[OutgoingMessage]) -> dict[object, tuple[str, str | None]]:
        """(From, Reply-To) per campaign id of the batch, from the campaign's words its messages carry."""
        found: dict[object, tuple[str, str | None]] = {}
        for m in batch:
            campaign_id = m.meta.get("campaign_id")
            if m.campaign and campaign_id is not None and campaign_id not in found:
                found[campaign_id] = identity(m.campaign, self.sender, self.mail_domain)
        return found

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Send a batch over up to `connections` connections at once; one result per message, in order."""
        shared = _Batch(batch, self.gate)
        shared.identities = self.identities(batch)
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
        # One thread, one connection: take the next message whose domain may go, until the batch is done.
        smtp = self._take_idle()
        try:
            while (taken := shared.take()) is not None:
                index, verdict, seconds = taken
                msg = shared.messages[index]
                domain = recipient_domain(msg.recipient)
                if verdict != "go":  # the domain is paused, or its pace would hold the batch: later
                    detail = (f"domaine {domain} en pause après un refus temporaire : nouvel essai dans "
                              f"{seconds:.0f} s" if verdict == "paused" else
                              f"cadence du domaine {domain} atteinte : nouvel essai dans {seconds:.0f} s")
                    shared.results[index] = SendResult(msg.message_id, Outcome.DEFERRED, detail,
                                                       retry_after=seconds)
                    continue
                refused = False
                try:
                    smtp, refused = self._one(smtp, shared, index, msg, on_handoff)
                finally:
                    self.gate.done(domain, refused)
                result = shared.results[index]
                if refused and result is not None:
                    result = SendResult(result.message_id, result.outcome, result.detail, result.provider_id,
                                        retry_after=max(result.retry_after or 0.0, self.gate.paused(domain)))
                shared.results[index] = answered(result, on_answer)
        finally:
            if smtp is not None:
                with self._idle_lock:
                    self._idle.append(smtp)

    def _one(self, smtp: smtplib.SMTP | None, shared: _Batch, index: int, msg: OutgoingMessage,
             on_handoff: Handoff | None) -> tuple[smtplib.SMTP | None, bool]:
        """Send one message (a connection opened if needed); the connection to keep (or None), and whether the
        domain refused it for now (`domain_refusal`). The result is left in `shared.results[index]`."""
        if shared.unreachable:
            shared.results[index] = SendResult(msg.message_id, Outcome.TRANSIENT, shared.unreachable)
            return smtp, False
        if smtp is None:
            try:
                smtp = self._open()
            except smtplib.SMTPResponseException as exc:  # greeting, STARTTLS or AUTH refused
                shared.unreachable = "connexion SMTP refusée : " + describe_reply(exc.smtp_code, exc.smtp_error)
            except (smtplib.SMTPException, OSError) as exc:
                shared.unreachable = f"serveur SMTP injoignable : {exc}"
            if smtp is None:
                shared.results[index] = SendResult(msg.message_id, Outcome.TRANSIENT, shared.unreachable)
                return None, False
        code, reply = None, b""
        try:
            result, keep, code, reply = self._attempt(smtp, msg, on_handoff, shared)
        except Exception as exc:  # noqa: BLE001 (a bug must not leave a connection inside DATA for reuse)
            result, keep = SendResult(msg.message_id, Outcome.TRANSIENT, f"erreur pendant l'envoi : {exc}"), False
        if result.outcome is Outcome.PERMANENT and hard_address_refusal(code, reply):
            result = replace(result, address_refused=True)  # the dispatcher suppresses the address
        shared.results[index] = result
        if not keep:
            _close(smtp)
            smtp = None
        listed = recipient_domain(msg.recipient) in self.gate.policy
        return smtp, result.outcome is Outcome.TRANSIENT and domain_refusal(code, reply, listed)
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
            if not self.starttls:  # a TLS socket retries a read the kernel timed out: Python's own timeout there
                _kernel_timeout(smtp.sock, self.timeout)
        except BaseException:
            _close(smtp)
            raise
        return smtp

    def _attempt(
        self, smtp: smtplib.SMTP, msg: OutgoingMessage, on_handoff: Handoff | None, shared: _Batch | None = None
    ) -> tuple[SendResult, bool, int | None, bytes]:
        """One message on one connection: its result, whether the connection can be reused, and the server's
        reply that decided it (code, text; None when no reply did)."""
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
            ), keep, exc.code, exc.reply
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            return SendResult(msg.message_id, Outcome.TRANSIENT, f"connexion SMTP perdue : {exc}"), False, None, b""
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                msg.message_id,
                classify_reply(exc.smtp_code, exc.smtp_error),
                describe_reply(exc.smtp_code, exc.smtp_error),
            ), False, exc.smtp_code, exc.smtp_error
        except (UnicodeError, ValueError) as exc:  # an address or header the wire cannot carry
            return SendResult(
                msg.message_id, Outcome.PERMANENT, f"adresse ou message impossible à envoyer : {exc}"
            ), False, None, b""

    def _send_one(
        self, smtp: smtplib.SMTP, msg: OutgoingMessage, on_handoff: Handoff | None, shared: _Batch | None = None
    ) -> tuple[SendResult, bool, int | None, bytes]:
        found = shared.identities.get(msg.meta.get("campaign_id")) if shared is not None else None
        sender, reply_to = found or (self.sender, None)
        data = build_email(msg, sender, reply_to)
        if self.dkim is not None:
            data = self.dkim.sign(data)
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
                return SendResult(msg.message_id, classify_reply(*failed), describe_reply(*failed)), False, *failed
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
        # Dot-stuffing (RFC 5321 4.5.2) where a line starts with "." (never in base64 parts: a search, not a pass).
        body = _LEADING_DOT.sub(b"..", data) if data.startswith(b".") or b"\n." in data else data
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        if on_handoff is not None and not on_handoff(msg.message_id):
            # Closing inside DATA makes the server discard the message.
            return SendResult(
                msg.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie"
            ), False, None, b""
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
            ), False, None, b""
        text = reply.decode(errors="replace")
        outcome = classify_reply(code, reply)
        detail = f"{code} {text}" if outcome is Outcome.SENT else describe_reply(code, reply)
        return (
            SendResult(
                msg.message_id, outcome, detail, provider_id=text[:200] if outcome is Outcome.SENT else ""
            ),
            code != 421,
            code,
            reply,
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


def _kernel_timeout(sock: socket.socket, timeout: float | None) -> None:
    """The connection's timeout kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO) on a blocking socket, instead of by
    Python, which polls the socket before every send and receive: half the system calls, each of which hands the
    GIL to another thread. A wait that runs out fails the call (EAGAIN) like a timeout: the connection is lost."""
    if not timeout:
        return
    seconds = int(timeout)
    value = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)


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
