"""SMS over HTTP: numbers checked with `phonenumbers`, one POST per message, replies parsed for opt-outs.

Settings (the composition root reads them and passes them as constructor arguments):

    DECLIC_SMS_PROVIDER   "generic" (default) or "octopush"
    DECLIC_SMS_URL        endpoint; required for "generic", defaults to Octopush's public URL for "octopush"
    DECLIC_SMS_API_KEY    generic: sent as `Authorization: Bearer <key>`; octopush: the `api-key` header
    DECLIC_SMS_LOGIN      octopush only: the account's e-mail, sent as the `api-login` header
    DECLIC_SMS_SENDER     sender name shown on the phone, 3 to 11 letters or digits (e.g. "DECLIC")
    DECLIC_SMS_TIMEOUT    seconds to wait for the provider (default 10)
    DECLIC_SMS_WORKERS    requests in flight at once (default 8)
    DECLIC_SMS_RATE       at most this many requests per second (0, the default: no limit); a 429 or 503
                          with `Retry-After` also pauses the channel: the rest of the batch is answered
                          TRANSIENT without a request (the dispatcher retries after the pause)
    DECLIC_SMS_OCTOPUSH_TYPE     "sms_premium" (default) or "sms_low_cost"
    DECLIC_SMS_OCTOPUSH_PURPOSE  "wholesale" (marketing, default) or "alert" (transactional)

Exactly once: `on_handoff(message_id)` is called just before the request leaves; when it answers False
(the lease went to another worker) the message is ABANDONED without a request. The reference sent with
every attempt (`Idempotency-Key`, Octopush `request_id`) lets the provider drop a repeat after a lost
answer.

Generic JSON adapter (the protocol a provider or an in-house gateway implements to plug in without code):

    POST <DECLIC_SMS_URL>
    Content-Type: application/json
    Authorization: Bearer <DECLIC_SMS_API_KEY>          (omitted when no key is set)
    Idempotency-Key: <reference>                        (the same on every retry of a message)

    {"to": "+33612345678", "text": "final text", "sender": "DECLIC", "reference": "<rfc_message_id>"}

    2xx  accepted; the body may be {"id": "<provider id>"} (also read: "message_id", "messageId")
    429  throttled; `Retry-After` (seconds or HTTP date) is honoured
    5xx  provider broken for now, retried later;  other 4xx: refused for good, with
         {"error": "...", "message": "..."} when the provider says why

    Replies and opt-outs POSTed back to Déclic (`parse_inbound`): one object or a list of objects
    {"from": "+33612345678", "text": "STOP", "reference": "<rfc_message_id>", "received_at": "<ISO 8601>"}
    (or {"replies": [...]}); {"stop": true} marks an opt-out the provider already recognised.
    Delivery receipts: {"reference": "<rfc_message_id>", "status": "delivered" | "undelivered" | "invalid" |
    "opted_out" | "pending", "to": "+336...", "at": "<ISO 8601>"} (`parse_delivery`).

Octopush adapter (French provider; format taken from its public API documentation at dev.octopush.com,
"Send SMS", "Webhook SMS Inbounds", "Callback Stop SMS (Opt-Out)" and "Return codes"):

    POST https://api.octopush.com/v1/public/sms-campaign/send
    headers  api-login: <account e-mail>, api-key: <key>, Content-Type: application/json
    body     {"text": ..., "recipients": [{"phone_number": "+336..."}], "type": "sms_premium",
              "purpose": "wholesale", "sender": "DECLIC", "with_replies": true, "request_id": <reference>}
    200      {"sms_ticket": "sms_5fec...", "number_of_contacts": 1, "total_cost": ..., ...}
    errors   the documented return codes (100-123...) are read from "code" (or "error_code") with the
             "message" when the body carries them; the exact error body is not documented, so it is read
             tolerantly. Code 120, "a SMS with the same request_id has already been sent", means the
             earlier attempt went through: it counts as SENT.
    Octopush refuses (code 121) a marketing ("wholesale") SMS to France without its "STOP au <short number>"
    mention in the text: the templates carry it, this channel does not add text.
    Inbound callbacks: {"message_id", "number", "text", "sim_card_number", "reception_date"} for replies,
    {"message_id", "number", "text", "stop_date"} for opt-outs; dates are "Y-m-d H:i:s", Paris time.
    Delivery receipts ("Acknowledge receipt" callback): {"message_id", "number", "status", "delivery_date"}
    with status DELIVERED, NOT_DELIVERED, BAD_DESTINATION, BLACKLISTED_NUMBER... (`parse_delivery`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

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
from orchestrator.core.outcomes import (
    DELIVERED,
    INVALID,
    OPTED_OUT,
    PENDING,
    UNDELIVERED,
    DeliveryReceipt,
    InboundReply,
    Outcome,
    SendResult,
)
from orchestrator.core.phones import InvalidNumber, normalise_mobile, normalise_number
from templates.lint import sms_length

OCTOPUSH_URL = "https://api.octopush.com/v1/public/sms-campaign/send"
OCTOPUSH_DUPLICATE_REQUEST = 120

SENDER_RE = re.compile(r"^[A-Za-z0-9]{3,11}$")


# --- inbound replies ---------------------------------------------------------------------------------


class InboundError(ValueError):
    """A provider callback Déclic cannot read; the message says which entry and why, in French."""


# Words that, in a short reply, mean "send me nothing more". Compared without accents or case.
STOP_WORDS = frozenset(
    {
        "stop",
        "stopp",
        "stopper",
        "arret",
        "arrete",
        "arreter",
        "arretez",
        "desinscription",
        "desinscrire",
        "desinscrivez",
        "desinscrivez-moi",
        "desabonner",
        "desabonnement",
        "desabonnez",
        "unsubscribe",
        "halte",
    }
)
STOP_PHRASES = ("plus recevoir", "plus de sms", "plus de message", "m'envoyez plus", "laissez-moi tranquille")
# A long reply that happens to contain "stop" is a conversation, not an opt-out; a short one is.
SHORT_REPLY_WORDS = 8


def _fold(text: str) -> str:
    """Lower case, no accents, curly apostrophes made straight, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.replace("’", "'").split())


def is_stop(text: str) -> bool:
    """True when an SMS reply asks to stop ("STOP", "Stop.", "STOP SMS", "arrêt", "désinscription"...)."""
    folded = _fold(text or "")
    if not folded:
        return False
    if any(phrase in folded for phrase in STOP_PHRASES):
        return True
    words = [w for w in re.split(r"[^a-z0-9'-]+", folded) if w]
    if not words:
        return False
    if words[0] in STOP_WORDS:
        return True
    return len(words) <= SHORT_REPLY_WORDS and any(w in STOP_WORDS for w in words)


def _parse_date(value: Any, index: int, zone: ZoneInfo) -> dt.datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InboundError(f"réponse n°{index + 1} : date illisible « {text} »") from None
    # Octopush sends "Y-m-d H:i:s" without offset, in local (French) time: the deployment's zone.
    return when if when.tzinfo else when.replace(tzinfo=zone)


def _entries(payload: Any) -> list[Any]:
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise InboundError("contenu illisible : ce n'est pas du JSON") from None
    if isinstance(payload, Mapping) and isinstance(payload.get("replies"), list):
        return list(payload["replies"])
    if isinstance(payload, Mapping):
        return [payload]
    if isinstance(payload, list):
        return payload
    raise InboundError("contenu inattendu : un objet ou une liste d'objets était attendu")


def parse_inbound(payload: Any, *, zone: ZoneInfo) -> list[InboundReply]:
    """Read a reply/opt-out callback (generic or Octopush; dict, list or JSON text) into replies; a date without
    an offset is in `zone` (the deployment's, `Settings.timezone`)."""
    replies = []
    for index, entry in enumerate(_entries(payload)):
        if not isinstance(entry, Mapping):
            raise InboundError(f"réponse n°{index + 1} : un objet était attendu")
        raw_number = entry.get("from", entry.get("number"))
        if not raw_number:
            raise InboundError(
                f"réponse n°{index + 1} : numéro de l'expéditeur absent (champ « from » ou « number »)"
            )
        try:
            number = normalise_number(str(raw_number))
        except InvalidNumber as exc:
            raise InboundError(f"réponse n°{index + 1} : {exc.reason}") from None
        text = str(entry.get("text") or "")
        provider_stop = "stop_date" in entry or entry.get("stop") is True
        received = entry.get("received_at") or entry.get("reception_date") or entry.get("stop_date")
        replies.append(
            InboundReply(
                number=number,
                text=text,
                received_at=_parse_date(received, index, zone),
                reference=str(entry.get("reference") or entry.get("message_id") or ""),
                is_stop=provider_stop or is_stop(text),
            )
        )
    return replies


# --- delivery receipts -------------------------------------------------------------------------------

OCTOPUSH_STATUSES = {
    "DELIVERED": DELIVERED,
    "READ": DELIVERED,
    "ACK": PENDING,
    "NOT_DELIVERED": UNDELIVERED,
    "UNKNOWN_DELIVERY": UNDELIVERED,
    "UNDEFINED": UNDELIVERED,
    "NOT_ALLOWED": UNDELIVERED,
    "BAD_DESTINATION": INVALID,
    "BLACKLISTED_NUMBER": OPTED_OUT,
}
GENERIC_STATUSES = {
    "delivered": DELIVERED,
    "undelivered": UNDELIVERED,
    "failed": UNDELIVERED,
    "expired": UNDELIVERED,
    "invalid": INVALID,
    "opted_out": OPTED_OUT,
    "accepted": PENDING,
    "pending": PENDING,
}


def parse_delivery(payload: Any, *, zone: ZoneInfo) -> list[DeliveryReceipt]:
    """Read delivery-receipt callbacks: Octopush {message_id, number, status, delivery_date} or the generic
    {reference, status, to, at} (one object, a list, or {"receipts": [...]}, as JSON text or values); a date
    without an offset is in `zone` (the deployment's)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("receipts"), list):
        payload = payload["receipts"]
    receipts = []
    for index, entry in enumerate(_entries(payload)):
        if not isinstance(entry, Mapping):
            raise InboundError(f"accusé n°{index + 1} : un objet était attendu")
        raw_status = str(entry.get("status") or "").strip()
        if "message_id" in entry:
            state = OCTOPUSH_STATUSES.get(raw_status.upper())
            reference = str(entry.get("message_id") or "")
            when = entry.get("delivery_date")
        else:
            state = GENERIC_STATUSES.get(raw_status.lower())
            reference = str(entry.get("reference") or "")
            when = entry.get("at")
        if state is None:
            raise InboundError(f"accusé n°{index + 1} : statut inconnu « {raw_status} »")
        if not reference:
            raise InboundError(f"accusé n°{index + 1} : référence du message absente")
        raw_number = entry.get("number") or entry.get("to") or ""
        try:
            number = normalise_number(str(raw_number)) if raw_number else ""
        except InvalidNumber as exc:
            raise InboundError(f"accusé n°{index + 1} : {exc.reason}") from None
        receipts.append(DeliveryReceipt(reference, state, raw_status, number, _parse_date(when, index, zone)))
    return receipts


# --- provider adapters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """The HTTP request an adapter wants for one message."""

    url: str
    json: dict[str, Any]
    headers: dict[str, str]


class SmsAdapter(Protocol):
    """How one provider's API wants an SMS and how it answers."""

    name: str

    def session_headers(self) -> dict[str, str]:
        """Headers sent with every request (authentication)."""
        ...

    def prepare(self, message: OutgoingMessage, number: str, reference: str) -> PreparedCall:
        """The request for one message to one E.164 number."""
        ...

    def provider_id(self, body: Any) -> str:
        """The provider's own id from a 2xx body."""
        ...

    def error_detail(self, body: Any) -> tuple[str, bool]:
        """From an error body: a short reason, and whether it actually means "already sent"."""
        ...


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class GenericJsonAdapter:
    """The documented generic JSON protocol (see the module docstring)."""

    name = "generic"

    def __init__(self, *, url: str, api_key: str = "", sender: str = "") -> None:
        if not url:
            raise ValueError("DECLIC_SMS_URL is required for the generic SMS provider")
        self.url = url
        self.api_key = api_key
        self.sender = sender

    def session_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def prepare(self, message: OutgoingMessage, number: str, reference: str) -> PreparedCall:
        body = {"to": number, "text": message.body, "sender": self.sender, "reference": reference}
        return PreparedCall(self.url, body, {"Idempotency-Key": reference})

    def provider_id(self, body: Any) -> str:
        if isinstance(body, Mapping):
            for key in ("id", "message_id", "messageId"):
                if body.get(key) not in (None, ""):
                    return str(body[key])
        return ""

    def error_detail(self, body: Any) -> tuple[str, bool]:
        if isinstance(body, Mapping):
            parts = [str(body[k]) for k in ("error", "message") if body.get(k)]
            return " : ".join(parts), False
        return "", False


class OctopushAdapter:
    """Octopush's public API v1 (see the module docstring for the format and its source)."""

    name = "octopush"

    def __init__(
        self,
        *,
        url: str = "",
        api_key: str,
        login: str,
        sender: str = "",
        sms_type: str = "sms_premium",
        purpose: str = "wholesale",
        with_replies: bool = True,
    ) -> None:
        if not api_key or not login:
            raise ValueError("Octopush needs DECLIC_SMS_LOGIN and DECLIC_SMS_API_KEY")
        if sms_type not in ("sms_premium", "sms_low_cost"):
            raise ValueError(f"unknown Octopush SMS type {sms_type!r}")
        if purpose not in ("wholesale", "alert"):
            raise ValueError(f"unknown Octopush purpose {purpose!r}")
        self.url = url or OCTOPUSH_URL
        self.api_key = api_key
        self.login = login
        self.sender = sender
        self.sms_type = sms_type
        self.purpose = purpose
        self.with_replies = with_replies

    def session_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key, "api-login": self.login}

    def prepare(self, message: OutgoingMessage, number: str, reference: str) -> PreparedCall:
        body: dict[str, Any] = {
            "text": message.body,
            "recipients": [{"phone_number": number}],
            "type": self.sms_type,
            "purpose": self.purpose,
            "with_replies": self.with_replies,
            # Octopush refuses a second request with the same id for 24 h: a retry after a lost answer
            # cannot send the SMS twice.
            "request_id": reference,
        }
        if self.sender:
            body["sender"] = self.sender
        return PreparedCall(self.url, body, {})

    def provider_id(self, body: Any) -> str:
        if isinstance(body, Mapping) and body.get("sms_ticket"):
            return str(body["sms_ticket"])
        return ""

    def error_detail(self, body: Any) -> tuple[str, bool]:
        if not isinstance(body, Mapping):
            return "", False
        code = body.get("code", body.get("error_code"))
        message = str(body.get("message") or "")
        try:
            duplicate = int(str(code)) == OCTOPUSH_DUPLICATE_REQUEST
        except (TypeError, ValueError):
            duplicate = False
        detail = f"code Octopush {code} : {message}" if code is not None else message
        return detail.strip(" :"), duplicate


def make_adapter(
    provider: str,
    *,
    url: str = "",
    api_key: str = "",
    login: str = "",
    sender: str = "",
    octopush_type: str = "sms_premium",
    octopush_purpose: str = "wholesale",
) -> SmsAdapter:
    """The adapter for a provider name ("generic" or "octopush")."""
    if provider == "generic":
        return GenericJsonAdapter(url=url, api_key=api_key, sender=sender)
    if provider == "octopush":
        return OctopushAdapter(
            url=url,
            api_key=api_key,
            login=login,
            sender=sender,
            sms_type=octopush_type,
            purpose=octopush_purpose,
        )
    raise ValueError(f"unknown SMS provider {provider!r} (known: generic, octopush)")


# --- the channel -------------------------------------------------------------------------------------


class SmsChannel:
    """SMS over HTTP through one provider adapter; one request per message, several in flight."""

    name = "sms"

    def __init__(
        self,
        *,
        provider: str = "generic",
        url: str = "",
        api_key: str = "",
        login: str = "",
        sender: str = "",
        timeout: float = 10.0,
        workers: int = 8,
        region: str = "FR",
        octopush_type: str = "sms_premium",
        octopush_purpose: str = "wholesale",
        rate: float = 0.0,
        adapter: SmsAdapter | None = None,
    ) -> None:
        if sender and not SENDER_RE.match(sender):
            raise ValueError(f"SMS sender {sender!r} must be 3 to 11 letters or digits")
        self.adapter = adapter or make_adapter(
            provider,
            url=url,
            api_key=api_key,
            login=login,
            sender=sender,
            octopush_type=octopush_type,
            octopush_purpose=octopush_purpose,
        )
        self.timeout = timeout
        self.region = region
        self._sessions = SessionPool(self.adapter.session_headers(), pool_size=2)
        self._workers = WorkerPool(workers)
        self._throttle = Throttle(rate)

    @classmethod
    def from_settings(cls, settings: Any, clock: Any = None) -> SmsChannel | UnconfiguredChannel:
        """The channel configured from the composition root's settings (`DECLIC_SMS_*`); no clock nor store."""
        try:
            return cls._from_settings(settings)
        except ValueError as exc:
            return UnconfiguredChannel(cls.name, str(exc))

    @classmethod
    def _from_settings(cls, settings: Any) -> SmsChannel:
        return cls(
            provider=setting(settings, "sms_provider", "generic"),
            url=setting(settings, "sms_url", ""),
            api_key=setting(settings, "sms_api_key", ""),
            login=setting(settings, "sms_login", ""),
            sender=setting(settings, "sms_sender", ""),
            timeout=setting(settings, "sms_timeout", 10.0),
            workers=setting(settings, "sms_workers", 8),
            octopush_type=setting(settings, "sms_octopush_type", "sms_premium"),
            octopush_purpose=setting(settings, "sms_octopush_purpose", "wholesale"),
            rate=setting(settings, "sms_rate", 0.0),
        )

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Send each SMS (invalid numbers: PERMANENT, no request); one result per message, in order."""
        return send_each(self._workers, self._throttle, self._send_one, batch, on_handoff, on_answer)

    def _send_one(self, message: OutgoingMessage, on_handoff: Handoff | None = None) -> SendResult:
        try:
            number = normalise_mobile(message.recipient, self.region)
        except InvalidNumber as exc:
            return SendResult(message.message_id, Outcome.PERMANENT, exc.reason)
        reference = message.rfc_message_id or f"declic-{message.message_id}"
        call = self.adapter.prepare(message, number, reference)
        paused = self._throttle.paused_for()
        if paused:
            return SendResult(message.message_id, Outcome.DEFERRED, pause_detail(paused), retry_after=paused)
        self._throttle.wait_turn()
        if on_handoff is not None and not on_handoff(message.message_id):
            return SendResult(
                message.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie"
            )
        try:
            response = self._sessions.get().post(
                call.url, json=call.json, headers=call.headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            return SendResult(message.message_id, Outcome.TRANSIENT, transport_detail(exc))
        except Exception as exc:  # one broken message must never stop the batch
            return SendResult(
                message.message_id, Outcome.TRANSIENT, f"erreur inattendue : {type(exc).__name__}"
            )
        return self._result(message, response)

    def _result(self, message: OutgoingMessage, response: requests.Response) -> SendResult:
        body = _json_or_none(response)
        outcome = classify_status(response.status_code)
        if outcome is Outcome.SENT:
            # The operator reads the cost in the history: segments and the encoding that set them.
            length = sms_length(message.body)
            plural = "s" if length.segments > 1 else ""
            return SendResult(
                message.message_id,
                outcome,
                status_detail(response, f"{length.segments} segment{plural} {length.encoding}"),
                provider_id=self.adapter.provider_id(body),
            )
        reason, already_sent = self.adapter.error_detail(body)
        if already_sent:
            return SendResult(
                message.message_id, Outcome.SENT, status_detail(response, "déjà accepté, non renvoyé")
            )
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After")) if outcome is Outcome.TRANSIENT else None
        )
        pause_after(self._throttle, response.status_code, retry_after)
        return SendResult(
            message.message_id, outcome, status_detail(response, reason), retry_after=retry_after
        )

    def close(self) -> None:
        """Stop the workers and close the HTTP connections."""
        self._workers.close()
        self._sessions.close()


register("sms", SmsChannel.from_settings)
