"""Signed tokens for links in messages: no personal data in URLs, nothing forgeable.

A token carries only a message id and a purpose, signed with the settings' secret (itsdangerous,
HMAC-SHA1 over a timestamped payload). Click and landing tokens expire; unsubscribe tokens are honoured
for a long time because an opt-out must always work.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from orchestrator.short_codes import short_url

# "a": an intermediary's answer about one client of a relay digest (`web.relay`).
PURPOSES = {"u": "unsubscribe", "r": "redirect", "m": "landing", "a": "relay_answer"}
MAX_AGE = {"u": 5 * 365 * 86400, "r": 180 * 86400, "m": 180 * 86400, "a": 180 * 86400}


class TokenError(ValueError):
    """A token that is forged, for another purpose, or expired."""


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="declic.links")


def make_token(secret: str, purpose: str, message_id: int) -> str:
    """A URL-safe token for `purpose` ("u", "r", "m") and one message."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _serializer(secret).dumps([purpose, message_id])


def read_token(secret: str, purpose: str, token: str) -> int:
    """The message id in a valid token of that purpose, else TokenError."""
    try:
        got_purpose, message_id = _serializer(secret).loads(token, max_age=MAX_AGE[purpose])
    except SignatureExpired as exc:
        raise TokenError("lien expiré") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise TokenError("lien invalide") from exc
    if got_purpose != purpose or not isinstance(message_id, int):
        raise TokenError("lien invalide")
    return message_id


def links_for(secret: str, base_url: str, message_id: int) -> dict[str, str]:
    """The tracked links of one message: landing page (through the click redirect), its short form for SMS and
    letters (`/s/<code>`, same click tracking), and unsubscribe."""
    base = base_url.rstrip("/")
    return {
        "landing": f"{base}/r/{make_token(secret, 'r', message_id)}",
        "short": short_url(secret, base, message_id),
        "unsubscribe": f"{base}/u/{make_token(secret, 'u', message_id)}",
    }
