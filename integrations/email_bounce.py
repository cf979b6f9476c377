"""E-mail replies and bounces: SMTP reply classification and delivery status notifications (DSN).

Two moments tell whether an e-mail reached someone:

- during the SMTP dialogue, the reply code (RFC 5321) and its enhanced status code (RFC 3463, "5.1.1"):
  `classify_reply` turns them into an outcome and `describe_reply` into plain French for the operator;
- later, a bounce e-mail sent back to the envelope sender: a multipart/report of type delivery-status
  (RFC 3464). `parse_dsn` reads one into `Bounce` values; each carries the original Message-ID, from
  which `outbox_id` finds the outbox row ("<declic.<id>@host>", see orchestrator.app.dispatch).

Hard bounces (the address does not exist, the domain has no mail server) must stop every future send
to the address; soft ones (mailbox full, server busy, greylisting) are retried.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy

from orchestrator.core.outcomes import HARD, SOFT, Bounce, Outcome

ENHANCED_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
OUTBOX_ID_RE = re.compile(r"<declic\.(\d+)@", re.IGNORECASE)

# Permanent codes that still describe a passing state of the mailbox: retried, not suppressed.
SOFT_PERMANENT = frozenset({"5.2.2", "5.2.0"})  # mailbox full; mailbox status unspecified

# Enhanced status -> what it means, in the words an operator reads in the message history.
MEANINGS = {
    "1.1": "adresse inconnue chez le destinataire",
    "1.2": "domaine inconnu ou sans serveur de courrier",
    "1.3": "adresse mal formée",
    "1.6": "le destinataire a changé d'adresse",
    "1.10": "le domaine n'accepte pas de courrier",
    "2.1": "boîte aux lettres désactivée",
    "2.2": "boîte aux lettres pleine",
    "2.3": "message trop gros pour cette boîte",
    "3.4": "message trop gros pour le serveur",
    "4.1": "le serveur du destinataire ne répond pas",
    "4.2": "connexion interrompue avec le serveur du destinataire",
    "4.4": "aucune route vers le domaine",
    "4.7": "délai de remise dépassé",
    "7.1": "refusé par la politique du destinataire (filtre anti-spam ou liste de blocage)",
    "7.25": "l'adresse IP d'envoi n'a pas de nom inverse",
    "7.26": "authentification de l'expéditeur (SPF/DKIM/DMARC) refusée",
}


def enhanced_status(text: str | bytes) -> str:
    """The first RFC 3463 enhanced status code in a reply ("5.1.1"), or ""."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    match = ENHANCED_RE.search(text or "")
    return ".".join(match.groups()) if match else ""


def classify_reply(code: int, text: str | bytes = "") -> Outcome:
    """SMTP reply -> outcome: 2xx sent; 4xx transient; 5xx permanent, except a full mailbox (transient)."""
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.TRANSIENT
    if 500 <= code < 600 and enhanced_status(text) in SOFT_PERMANENT:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


# Permanent refusals about the address itself (unknown, bad domain, malformed, moved, disabled): a hard bounce
# given at once by the server, in the SMTP dialogue, suppresses the address as a DSN's does. A refusal for the
# message (5.7.x policy, 5.3.4 size) is not the address's fault.
ADDRESS_FAILURES = ("5.1.", "5.2.1")


def hard_address_refusal(code: int | None, text: str | bytes = "") -> bool:
    """True when an SMTP reply refuses the address for good (550 5.1.1 "User unknown"): never write to it again."""
    return code is not None and 500 <= code < 600 and enhanced_status(text).startswith(ADDRESS_FAILURES)


def bounce_kind(status: str) -> str:
    """ "hard" for a failure that will not change by waiting ("5.1.1"), else "soft"."""
    return HARD if status.startswith("5.") and status not in SOFT_PERMANENT else SOFT


# With a 4xx reply only these keep their meaning; a temporary "4.2.1" or "4.7.1" is mostly greylisting.
TEMPORARY_MEANINGS = frozenset({"2.2", "3.4", "4.1", "4.2", "4.4", "4.7"})


def _meaning(status: str) -> str:
    if not status:
        return ""
    klass, subject, detail = status.split(".")
    key = f"{subject}.{detail}"
    if klass == "4" and key not in TEMPORARY_MEANINGS:
        return ""
    return MEANINGS.get(key, "")


def describe_reply(code: int, text: str | bytes = "") -> str:
    """A reply in plain French, then as the server wrote it: "adresse inconnue ... (550 5.1.1 ...)"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    raw = " ".join(f"{code} {text}".split())[:300]
    status = enhanced_status(text)
    meaning = _meaning(status)
    if not meaning:
        if code == 421:
            meaning = "serveur de courrier indisponible pour l'instant"
        elif code in (450, 451, 452):
            meaning = "refus temporaire du serveur (occupé, liste grise ou quota)"
        elif 400 <= code < 500:
            meaning = "refus temporaire du serveur"
        elif 500 <= code < 600:
            meaning = "refus définitif du serveur"
    return f"{meaning} ({raw})" if meaning else raw


# --- DSN ---------------------------------------------------------------------------------------------


def outbox_id(message_id: str) -> int | None:
    """The outbox row id inside one of Déclic's Message-IDs, else None."""
    match = OUTBOX_ID_RE.search(message_id or "")
    return int(match.group(1)) if match else None


def _address(field: str) -> str:
    # "rfc822; user@example.com" -> "user@example.com"
    value = field.split(";", 1)[1] if ";" in field else field
    return value.strip().strip("<>").lower()


def _original_message_id(report: Message) -> str:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        elif kind == "text/rfc822-headers":
            headers = message_from_bytes(part.get_payload(decode=True) or b"", policy=default_policy)
            if headers.get("Message-ID"):
                return str(headers["Message-ID"]).strip()
    return ""


def parse_dsn(raw: bytes | str) -> list[Bounce]:
    """The recipients reported by a DSN e-mail (RFC 3464); [] when the e-mail is not a delivery report."""
    data = raw.encode("utf-8", errors="replace") if isinstance(raw, str) else raw
    report = message_from_bytes(data, policy=default_policy)
    if report.get_content_type() != "multipart/report":
        return []
    status_part = next((p for p in report.walk() if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return []
    blocks = status_part.get_payload()
    if not isinstance(blocks, list):
        return []
    original = _original_message_id(report)
    bounces = []
    # The first block describes the message (Reporting-MTA...); each following one, a recipient.
    for block in blocks[1:]:
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        action = str(block.get("Action") or "").strip().lower()
        if not recipient or not action:
            continue
        diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
        if diagnostic.lower().startswith("smtp;"):
            diagnostic = diagnostic[5:].strip()
        status = enhanced_status(str(block.get("Status") or "")) or enhanced_status(diagnostic)
        bounces.append(
            Bounce(
                recipient=_address(str(recipient)),
                action=action,
                status=status,
                kind=bounce_kind(status) if action == "failed" else SOFT,
                diagnostic=diagnostic,
                original_message_id=original,
                outbox_id=outbox_id(original),
            )
        )
    return bounces
