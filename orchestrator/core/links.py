"""Signed tokens for links in messages: no personal data in URLs, nothing forgeable.

A token carries only a message id, a purpose and when it was made, signed with the settings' secret. Click and
landing tokens expire; unsubscribe tokens are honoured for a long time because an opt-out must always work.
Pure: the moment a token is made or read (`now`, aware) is the caller's, from the App's clock.

Format (since issue 18): URL-safe base64, without padding, of a compact binary payload — the purpose's letter
(1 byte), the signing time (4 bytes, seconds since the epoch), the message id (big-endian, as few bytes as it
needs) — followed by the first 16 bytes of its HMAC-SHA256 under a key derived from the secret. The keyed hash
is set up once per secret and copied per token, so a link costs a few microseconds (itsdangerous's serializer,
JSON and a fresh HMAC per link, cost ten times as much on every e-mail). A token has no "." in it.

Links already sent keep working: a token with a "." is an itsdangerous token of the earlier format
(HMAC-SHA1 over a timestamped JSON payload, salt "declic.links") and is read as before, with the same ages.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import struct
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from orchestrator.core.short_codes import short_url

# "a": an intermediary's answer about one client of a relay digest (`web.relay`).
PURPOSES = {"u": "unsubscribe", "r": "redirect", "m": "landing", "a": "relay_answer"}
MAX_AGE = {"u": 5 * 365 * 86400, "r": 180 * 86400, "m": 180 * 86400, "a": 180 * 86400}
_MAC_BYTES = 16
_HEAD = struct.Struct(">cI")  # purpose letter, signing time


class TokenError(ValueError):
    """A token that is forged, for another purpose, or expired."""


@lru_cache(maxsize=16)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC-SHA256 state keyed for link tokens (copied per token: the key's pads are hashed once)."""
    key = hmac.new(secret.encode("utf-8"), b"declic.links.v2", hashlib.sha256).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(secret: str, payload: bytes) -> bytes:
    state = _keyed(secret).copy()
    state.update(payload)
    return state.digest()[:_MAC_BYTES]


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="declic.links")


def make_token(secret: str, purpose: str, message_id: int, *, now: dt.datetime) -> str:
    """A URL-safe token for `purpose` ("u", "r", "m", "a") and one message, signed at `now`."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if message_id < 0:
        raise ValueError("message id must not be negative")
    payload = _HEAD.pack(purpose.encode("ascii"), int(now.timestamp())) + message_id.to_bytes(
        max(1, (message_id.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).rstrip(b"=").decode("ascii")


def read_token(secret: str, purpose: str, token: str, *, now: dt.datetime) -> int:
    """The message id in a valid token of that purpose, not expired at `now`, else TokenError (either format)."""
    if "." in token:
        return _read_itsdangerous(secret, purpose, token, now)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("lien invalide") from exc
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(payload) <= _HEAD.size or len(payload) > _HEAD.size + 8 or not hmac.compare_digest(
            mac, _mac(secret, payload)):
        raise TokenError("lien invalide")
    got_purpose, signed_at = _HEAD.unpack_from(payload)
    if got_purpose != purpose.encode("ascii"):
        raise TokenError("lien invalide")
    if now.timestamp() - signed_at > MAX_AGE[purpose]:
        raise TokenError("lien expiré")
    return int.from_bytes(payload[_HEAD.size:], "big")


def _read_itsdangerous(secret: str, purpose: str, token: str, now: dt.datetime) -> int:
    """A token of the format used before issue 18 (links already in people's mailboxes)."""
    try:
        # Its age is judged here against `now`, not by itsdangerous against the wall clock.
        (got_purpose, message_id), signed_at = _serializer(secret).loads(token, return_timestamp=True)
    except SignatureExpired as exc:
        raise TokenError("lien expiré") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise TokenError("lien invalide") from exc
    if not 0 <= (now - signed_at).total_seconds() <= MAX_AGE[purpose]:
        raise TokenError("lien expiré")
    if got_purpose != purpose or not isinstance(message_id, int):
        raise TokenError("lien invalide")
    return message_id


class _Links(dict[str, str]):
    """Links whose short form is computed when a template first reads it (an e-mail never does: its keyed
    permutation costs more than both signed tokens)."""

    __slots__ = ("_short",)
    _short: tuple[str, str, int]  # short_url's secret, base URL and message id

    def __missing__(self, key: str) -> str:
        if key != "short":
            raise KeyError(key)
        self["short"] = value = short_url(*self._short)
        return value


def links_for(secret: str, base_url: str, message_id: int, *, now: dt.datetime, lazy_short: bool = False
              ) -> dict[str, str]:
    """The tracked links of one message, signed at `now`: landing page (through the click redirect), its short
    form for SMS and letters (`/s/<code>`, same click tracking), and unsubscribe.

    `lazy_short`: the short form is left out of the dict until it is read (``links["short"]``,
    ``links.short`` in a template), for a caller that only renders a template with them."""
    base = base_url.rstrip("/")
    landing = f"{base}/r/{make_token(secret, 'r', message_id, now=now)}"
    unsubscribe = f"{base}/u/{make_token(secret, 'u', message_id, now=now)}"
    if lazy_short:
        links = _Links(landing=landing, unsubscribe=unsubscribe)
        links._short = (secret, base, message_id)
        return links
    return {"landing": landing, "short": short_url(secret, base, message_id), "unsubscribe": unsubscribe}
