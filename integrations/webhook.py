"""Webhook: a signed JSON POST of each message to a partner's CRM.

Settings (read by the composition root, passed as constructor arguments):

    DECLIC_WEBHOOK_URL       default endpoint; a message whose recipient is an http(s) URL goes there instead
    DECLIC_WEBHOOK_SECRET    shared secret for the HMAC-SHA256 signature (at least 16 characters)
    DECLIC_WEBHOOK_SECRETS   one secret per partner, as JSON {"https://crm.partner.example": "secret", ...}:
                             a URL starting with a key is signed with its secret (the longest key wins),
                             any other with DECLIC_WEBHOOK_SECRET; one partner never holds another's key
    DECLIC_WEBHOOK_TIMEOUT   seconds to wait for the partner (default 10)
    DECLIC_WEBHOOK_WORKERS   requests in flight at once (default 4)
    DECLIC_WEBHOOK_RATE      at most this many requests per second (0, the default: no limit); a 429/503
                             with `Retry-After` holds the rest of the batch
    (a receiver's `verify` accepts 300 seconds of clock skew by default)

What the partner receives:

    POST <url>
    Content-Type: application/json; charset=utf-8
    X-Declic-Timestamp: 1795766400                     (Unix seconds when the request was signed)
    X-Declic-Signature: sha256=<hex>                   HMAC-SHA256(secret, "<timestamp>." + raw body)
    Idempotency-Key: <reference>                       (the same on every retry)

    {"type": "declic.message", "id": "<reference>", "message_id": 42, "subject": "...", "text": "...",
     "meta": {...campaign, business, siret...}}

The signature covers the timestamp so a captured request cannot be replayed later; a receiver checks
it with `verify(secret, timestamp, body, signature)` over the raw bytes, before parsing the JSON.
`on_handoff(message_id)` is called just before the request leaves; False (lease lost) means ABANDONED
without a request. Outcomes follow the SMS rules: 2xx SENT; 408/425/429/5xx, timeouts and refused
connections TRANSIENT (with `Retry-After`); other 4xx PERMANENT.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from integrations._http import (
    SessionPool,
    Throttle,
    WorkerPool,
    classify_status,
    parse_retry_after,
    pause_after,
    pause_detail,
    send_each,
    status_detail,
    transport_detail,
)
from integrations._settings import UnconfiguredChannel, setting
from integrations.base import Answer, Handoff, OutgoingMessage, register
from orchestrator.core.outcomes import Outcome, SendResult

SIGNATURE_HEADER = "X-Declic-Signature"
TIMESTAMP_HEADER = "X-Declic-Timestamp"
SIGNATURE_PREFIX = "sha256="
MIN_SECRET_LENGTH = 16


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Declic-Signature` value for a body sent at `timestamp`: "sha256=<hex>"."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """True when `signature` matches the body and the timestamp is within `tolerance` seconds of `now`."""
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    # The receiver judges freshness on its own wall clock (the sender signs on its real time, see WebhookChannel).
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    # Constant-time comparison: a byte-by-byte check would leak how much of a forgery was right.
    return hmac.compare_digest(sign(secret, sent_at, body), (signature or "").strip())


def payload_for(message: OutgoingMessage, reference: str) -> dict[str, Any]:
    """The JSON document sent for one message."""
    return {
        "type": "declic.message",
        "id": reference,
        "message_id": message.message_id,
        "subject": message.subject,
        "text": message.body,
        "meta": message.meta,
    }


def _is_url(value: str) -> bool:
    return value.startswith("http://") or value.startswith("https://")


class WebhookChannel:
    """Signed JSON POSTs to partners' CRMs; one request per message, several in flight."""

    name = "webhook"

    def __init__(
        self,
        *,
        secret: str = "",
        secrets: Mapping[str, str] | str | None = None,
        url: str = "",
        timeout: float = 10.0,
        workers: int = 4,
        rate: float = 0.0,
        # Signing time, not the App's clock: the receiver checks it against its own wall clock (5 minutes), so a
        # fixed demo or test clock would make every request look forged.
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(secrets, str):
            secrets = json.loads(secrets) if secrets.strip() else {}
        self.secrets = dict(secrets or {})
        if not secret and not self.secrets:
            raise ValueError("DECLIC_WEBHOOK_SECRET (or DECLIC_WEBHOOK_SECRETS) is required")
        named = {f"DECLIC_WEBHOOK_SECRETS[{prefix!r}]": value for prefix, value in self.secrets.items()}
        if secret:
            named["DECLIC_WEBHOOK_SECRET"] = secret
        for name, value in named.items():
            if len(value or "") < MIN_SECRET_LENGTH:
                raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
        self.secret = secret
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self._sessions = SessionPool({"Content-Type": "application/json; charset=utf-8"}, pool_size=2)
        self._workers = WorkerPool(workers)
        self._throttle = Throttle(rate)

    @classmethod
    def from_settings(cls, settings: Any, clock: Any = None) -> WebhookChannel | UnconfiguredChannel:
        """The channel configured from the composition root's settings (`DECLIC_WEBHOOK_*`); signatures
        use the real time, which the partner checks against its own clock."""
        try:
            return cls._from_settings(settings)
        except ValueError as exc:
            return UnconfiguredChannel(cls.name, str(exc))

    @classmethod
    def _from_settings(cls, settings: Any) -> WebhookChannel:
        return cls(
            secret=setting(settings, "webhook_secret", ""),
            secrets=setting(settings, "webhook_secrets", ""),
            url=setting(settings, "webhook_url", ""),
            timeout=setting(settings, "webhook_timeout", 10.0),
            workers=setting(settings, "webhook_workers", 4),
            rate=setting(settings, "webhook_rate", 0.0),
        )

    def secret_for(self, url: str) -> str:
        """The secret that signs requests to `url`: the partner's own, else the default ("" if none)."""
        matches = [prefix for prefix in self.secrets if url.startswith(prefix)]
        return self.secrets[max(matches, key=len)] if matches else self.secret

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """POST each message; one result per message, in order."""
        return send_each(self._workers, self._throttle, self._send_one, batch, on_handoff, on_answer)

    def _send_one(self, message: OutgoingMessage, on_handoff: Handoff | None = None) -> SendResult:
        url = message.recipient if _is_url(message.recipient) else self.url
        if not url:
            return SendResult(message.message_id, Outcome.PERMANENT, "adresse du webhook absente")
        secret = self.secret_for(url)
        if not secret:
            return SendResult(message.message_id, Outcome.PERMANENT, f"aucune clé de signature pour {url}")
        reference = message.rfc_message_id or f"declic-{message.message_id}"
        try:
            body = json.dumps(payload_for(message, reference), ensure_ascii=False, default=str).encode(
                "utf-8"
            )
        except (TypeError, ValueError) as exc:
            return SendResult(message.message_id, Outcome.PERMANENT, f"contenu impossible à encoder : {exc}")
        paused = self._throttle.paused_for()
        if paused:
            return SendResult(message.message_id, Outcome.DEFERRED, pause_detail(paused), retry_after=paused)
        self._throttle.wait_turn()
        # Signed at send time, so a retry carries a fresh timestamp that the receiver will accept.
        timestamp = int(self.clock())
        headers = {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Idempotency-Key": reference,
        }
        if on_handoff is not None and not on_handoff(message.message_id):
            return SendResult(
                message.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie"
            )
        try:
            response = self._sessions.get().post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return SendResult(message.message_id, Outcome.TRANSIENT, transport_detail(exc))
        except Exception as exc:  # one broken message must never stop the batch
            return SendResult(
                message.message_id, Outcome.TRANSIENT, f"erreur inattendue : {type(exc).__name__}"
            )
        outcome = classify_status(response.status_code)
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After")) if outcome is Outcome.TRANSIENT else None
        )
        pause_after(self._throttle, response.status_code, retry_after)
        provider_id = ""
        if outcome is Outcome.SENT:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("id") not in (None, ""):
                provider_id = str(answer["id"])
        return SendResult(
            message.message_id,
            outcome,
            status_detail(response),
            provider_id=provider_id,
            retry_after=retry_after,
        )

    def close(self) -> None:
        """Stop the workers and close the HTTP connections."""
        self._workers.close()
        self._sessions.close()


register("webhook", WebhookChannel.from_settings)
