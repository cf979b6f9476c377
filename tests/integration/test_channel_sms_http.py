"""SMS channel against a real HTTP provider on loopback (generic JSON and Octopush shapes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from integrations.base import OutgoingMessage, factory_for
from integrations.loopback import LoopbackPeer, Reply, generic_ok, octopush_ok
from integrations.sms_http import SmsChannel
from orchestrator.app.settings import Settings
from orchestrator.core.outcomes import Outcome


def sms(message_id: int, to: str = "06 12 34 56 78", text: str = "Bonjour, STOP au 36111") -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        channel="sms",
        recipient=to,
        body=text,
        rfc_message_id=f"<{message_id}@declic.test>",
    )


@pytest.fixture
def generic_peer() -> Iterator[LoopbackPeer]:
    with LoopbackPeer(generic_ok) as peer:
        yield peer


@pytest.fixture
def octopush_peer() -> Iterator[LoopbackPeer]:
    with LoopbackPeer(octopush_ok) as peer:
        yield peer


@pytest.fixture
def generic(generic_peer: LoopbackPeer) -> Iterator[SmsChannel]:
    channel = SmsChannel(
        provider="generic", url=generic_peer.url + "/sms", api_key="k3y", sender="DECLIC", timeout=2
    )
    yield channel
    channel.close()


@pytest.fixture
def octopush(octopush_peer: LoopbackPeer) -> Iterator[SmsChannel]:
    channel = SmsChannel(
        provider="octopush",
        url=octopush_peer.url + "/v1/public/sms-campaign/send",
        api_key="k3y",
        login="ops@declic.test",
        sender="DECLIC",
        timeout=2,
    )
    yield channel
    channel.close()


def test_the_channel_registers_itself_by_name() -> None:
    assert factory_for("sms") == SmsChannel.from_settings


def test_generic_request_follows_the_documented_protocol(
    generic: SmsChannel, generic_peer: LoopbackPeer
) -> None:
    [result] = generic.send([sms(1)])
    assert result.outcome is Outcome.SENT
    assert result.provider_id.startswith("msg-")
    [request] = generic_peer.received
    assert request.path == "/sms"
    assert request.headers["authorization"] == "Bearer k3y"
    assert request.headers["idempotency-key"] == "<1@declic.test>"
    assert request.json() == {
        "to": "+33612345678",
        "text": "Bonjour, STOP au 36111",
        "sender": "DECLIC",
        "reference": "<1@declic.test>",
    }


def test_octopush_request_has_the_real_shape(octopush: SmsChannel, octopush_peer: LoopbackPeer) -> None:
    [result] = octopush.send([sms(7, text="Boulangers : gagnez du temps. STOP au 36111")])
    assert result.outcome is Outcome.SENT
    assert result.provider_id.startswith("sms_")
    [request] = octopush_peer.received
    assert request.path == "/v1/public/sms-campaign/send"
    assert request.headers["api-key"] == "k3y"
    assert request.headers["api-login"] == "ops@declic.test"
    body = request.json()
    assert body["recipients"] == [{"phone_number": "+33612345678"}]
    assert body["text"] == "Boulangers : gagnez du temps. STOP au 36111"
    assert body["type"] == "sms_premium"
    assert body["purpose"] == "wholesale"
    assert body["sender"] == "DECLIC"
    assert body["request_id"] == "<7@declic.test>"


def test_429_with_retry_after_is_transient_then_200_is_sent(
    generic: SmsChannel, generic_peer: LoopbackPeer
) -> None:
    generic_peer.then(
        Reply(429, {"error": "rate_limited", "message": "trop de requêtes"}, {"Retry-After": "7"})
    )
    [first] = generic.send([sms(1)])
    assert first.outcome is Outcome.TRANSIENT
    assert first.retry_after == 7.0
    assert "429" in first.detail and "trop de requêtes" in first.detail
    [second] = generic.send([sms(1)])
    assert second.outcome is Outcome.SENT
    # Both attempts carried the same reference so the provider can drop a duplicate.
    assert {r.json()["reference"] for r in generic_peer.received} == {"<1@declic.test>"}


def test_retry_after_as_an_http_date_is_understood(generic: SmsChannel, generic_peer: LoopbackPeer) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    generic_peer.then(Reply(503, None, {"Retry-After": when}))
    [result] = generic.send([sms(1)])
    assert result.outcome is Outcome.TRANSIENT
    assert result.retry_after is not None and 100 <= result.retry_after <= 121


def test_400_is_permanent_with_the_provider_reason(octopush: SmsChannel, octopush_peer: LoopbackPeer) -> None:
    octopush_peer.then(Reply(400, {"code": 121, "message": "STOP au XXXXX mandatory"}))
    [result] = octopush.send([sms(1, text="Bonjour")])
    assert result.outcome is Outcome.PERMANENT
    assert "400" in result.detail and "121" in result.detail


def test_octopush_duplicate_request_id_counts_as_sent(
    octopush: SmsChannel, octopush_peer: LoopbackPeer
) -> None:
    octopush_peer.then(Reply(400, {"code": 120, "message": "request_id already used"}))
    [result] = octopush.send([sms(1)])
    assert result.outcome is Outcome.SENT
    assert "déjà accepté" in result.detail


def test_500_is_transient(generic: SmsChannel, generic_peer: LoopbackPeer) -> None:
    generic_peer.then(Reply(500, b"oops"))
    [result] = generic.send([sms(1)])
    assert result.outcome is Outcome.TRANSIENT
    assert result.retry_after is None


def test_timeout_is_transient(generic_peer: LoopbackPeer) -> None:
    generic_peer.then(Reply(200, {"id": "late"}, delay=1.0))
    channel = SmsChannel(provider="generic", url=generic_peer.url, timeout=0.2)
    try:
        [result] = channel.send([sms(1)])
    finally:
        channel.close()
    assert result.outcome is Outcome.TRANSIENT
    assert "délai" in result.detail


def test_refused_connection_is_transient() -> None:
    with LoopbackPeer() as peer:
        url = peer.url  # the port is now free and nobody listens on it
    channel = SmsChannel(provider="generic", url=url, timeout=1)
    try:
        [result] = channel.send([sms(1)])
    finally:
        channel.close()
    assert result.outcome is Outcome.TRANSIENT
    assert "connexion impossible" in result.detail


def test_a_mixed_batch_keeps_order_and_never_raises(generic: SmsChannel, generic_peer: LoopbackPeer) -> None:
    batch = [sms(1), sms(2, to="01 23 45 67 89"), sms(3, to="n/a"), sms(4, to="+33781234567")]
    results = generic.send(batch)
    assert [r.message_id for r in results] == [1, 2, 3, 4]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.PERMANENT, Outcome.PERMANENT, Outcome.SENT]
    assert "pas un mobile" in results[1].detail
    assert "invalide" in results[2].detail
    # Invalid numbers never reach the provider.
    assert sorted(r.json()["to"] for r in generic_peer.received) == ["+33612345678", "+33781234567"]


def test_a_large_batch_goes_out_concurrently_each_message_once(generic_peer: LoopbackPeer) -> None:
    channel = SmsChannel(provider="generic", url=generic_peer.url, workers=8, timeout=5)
    try:
        results = channel.send([sms(i, to=f"+336{i:08d}") for i in range(1, 201)])
    finally:
        channel.close()
    assert all(r.outcome is Outcome.SENT for r in results)
    assert [r.message_id for r in results] == list(range(1, 201))
    references = [r.json()["reference"] for r in generic_peer.received]
    assert len(references) == len(set(references)) == 200


def test_bad_settings_are_refused_early() -> None:
    with pytest.raises(ValueError, match="DECLIC_SMS_URL"):
        SmsChannel(provider="generic")
    with pytest.raises(ValueError, match="DECLIC_SMS_LOGIN"):
        SmsChannel(provider="octopush", api_key="k")
    with pytest.raises(ValueError, match="sender"):
        SmsChannel(provider="generic", url="http://x", sender="Déclic TPE!")
    with pytest.raises(ValueError, match="unknown SMS provider"):
        SmsChannel(provider="carrier-pigeon")


def test_a_lost_lease_abandons_the_message_without_a_request(
    generic: SmsChannel, generic_peer: LoopbackPeer
) -> None:
    asked: list[int] = []

    def on_handoff(message_id: int) -> bool:
        asked.append(message_id)
        return message_id != 2

    results = generic.send([sms(1), sms(2, to="+33781234567"), sms(3, to="bad")], on_handoff=on_handoff)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.ABANDONED, Outcome.PERMANENT]
    assert sorted(asked) == [1, 2]  # an invalid number is refused before any hand-off
    assert [r.json()["to"] for r in generic_peer.received] == ["+33612345678"]


def test_from_settings_takes_the_environment_and_explicit_values_first(
    octopush_peer: LoopbackPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECLIC_SMS_LOGIN", "env@declic.test")
    monkeypatch.setenv("DECLIC_SMS_WORKERS", "2")
    monkeypatch.setenv("DECLIC_SMS_API_KEY", "from-env")
    settings = Settings(sms_provider="octopush", sms_url=octopush_peer.url, sms_api_key="from-settings")
    channel = factory_for("sms")(settings)
    try:
        assert channel.send([sms(1)])[0].outcome is Outcome.SENT
    finally:
        channel.close()
    assert channel._workers.workers == 2
    headers = octopush_peer.received[0].headers
    assert (headers["api-key"], headers["api-login"]) == ("from-settings", "env@declic.test")


def test_a_429_holds_the_rest_of_the_batch_without_requests(generic_peer: LoopbackPeer) -> None:
    generic_peer.then(Reply(429, {"error": "rate_limited"}, {"Retry-After": "30"}))
    channel = SmsChannel(provider="generic", url=generic_peer.url, workers=1, timeout=2)
    try:
        results = channel.send([sms(i, to=f"+336{i:08d}") for i in range(1, 6)])
        # The one sent got the 429 (tried); the rest were held back without a request (deferred, no try spent).
        assert [r.outcome for r in results] == [Outcome.TRANSIENT] + [Outcome.DEFERRED] * 4
        assert len(generic_peer.received) == 1  # the provider asked for quiet: no more requests
        assert all(r.retry_after is not None and 25 <= r.retry_after <= 30 for r in results)
        assert "pause demandée" in results[1].detail
        # The next batch starts afresh (the dispatcher has waited for the Retry-After).
        assert channel.send([sms(1)])[0].outcome is Outcome.SENT
    finally:
        channel.close()


def test_the_rate_setting_paces_requests(generic_peer: LoopbackPeer) -> None:
    channel = SmsChannel(provider="generic", url=generic_peer.url, workers=4, rate=100, timeout=2)
    try:
        started = time.monotonic()
        results = channel.send([sms(i, to=f"+336{i:08d}") for i in range(1, 31)])
        elapsed = time.monotonic() - started
    finally:
        channel.close()
    assert all(r.outcome is Outcome.SENT for r in results)
    assert elapsed >= 0.28  # 30 requests at 100/s take at least 0.29 s


def test_a_failing_handoff_is_transient_for_that_message_only(
    generic: SmsChannel, generic_peer: LoopbackPeer
) -> None:
    def on_handoff(message_id: int) -> bool:
        if message_id == 2:
            raise RuntimeError("database is locked")
        return True

    results = generic.send(
        [sms(1), sms(2, to="+33781234567"), sms(3, to="+33781234568")], on_handoff=on_handoff
    )
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.TRANSIENT, Outcome.SENT]
    assert "database is locked" in results[1].detail
    assert len(generic_peer.received) == 2


def test_missing_settings_hold_the_messages_instead_of_breaking_the_dispatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DECLIC_SMS_URL", raising=False)
    channel = factory_for("sms")(SimpleNamespace())
    [result] = channel.send([sms(1)])
    assert result.outcome is Outcome.TRANSIENT
    assert "non configuré" in result.detail and "DECLIC_SMS_URL" in result.detail
    channel.close()


def test_the_detail_tells_segments_and_encoding(generic: SmsChannel) -> None:
    short, accented = generic.send([sms(1, text="Bonjour, à bientôt. STOP au 36111"), sms(2, text="é" * 200)])
    assert "1 segment UCS-2" in short.detail  # "ô" is not in GSM-7
    assert "2 segments GSM-7" in accented.detail  # "é" is
