"""Webhook channel against a real partner CRM on loopback that checks the signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from integrations.base import OutgoingMessage, factory_for
from integrations.loopback import LoopbackPeer, Received, Reply
from integrations.webhook import WebhookChannel, verify
from orchestrator.app.settings import Settings
from orchestrator.core.outcomes import Outcome

SECRET = "crm-shared-secret-0123456789"


def crm_checking_signatures(request: Received) -> Reply:
    """A partner CRM: refuses any request whose signature does not verify over the raw body."""
    ok = verify(
        SECRET,
        request.headers.get("x-declic-timestamp", ""),
        request.body,
        request.headers.get("x-declic-signature", ""),
    )
    if not ok:
        return Reply(401, {"error": "bad signature"})
    return Reply(201, {"id": f"crm-{json.loads(request.body)['message_id']}"})


def event(message_id: int, recipient: str = "") -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        channel="webhook",
        recipient=recipient,
        subject="Nouvelle entreprise à accompagner",
        body="La boulangerie Martin (Rennes) a été créée le 2 novembre : proposer le diagnostic.",
        rfc_message_id=f"<{message_id}@declic.test>",
        meta={"campaign": "Création 35", "siret": "12345678900011", "metier": "boulanger"},
    )


@pytest.fixture
def crm() -> Iterator[LoopbackPeer]:
    with LoopbackPeer(crm_checking_signatures) as peer:
        yield peer


@pytest.fixture
def channel(crm: LoopbackPeer) -> Iterator[WebhookChannel]:
    channel = WebhookChannel(secret=SECRET, url=crm.url + "/declic", timeout=2)
    yield channel
    channel.close()


def test_the_channel_registers_itself_by_name() -> None:
    assert factory_for("webhook") == WebhookChannel.from_settings


def test_signed_post_is_verified_by_the_crm(channel: WebhookChannel, crm: LoopbackPeer) -> None:
    [result] = channel.send([event(42)])
    assert result.outcome is Outcome.SENT, result.detail
    assert result.provider_id == "crm-42"
    [request] = crm.received
    assert request.path == "/declic"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["idempotency-key"] == "<42@declic.test>"
    document = request.json()
    assert document["type"] == "declic.message"
    assert document["id"] == "<42@declic.test>"
    assert document["meta"]["siret"] == "12345678900011"
    assert "boulangerie" in document["text"]


def test_a_wrong_secret_is_refused_by_the_crm_and_permanent(crm: LoopbackPeer) -> None:
    wrong = WebhookChannel(secret="not-the-partner-secret", url=crm.url, timeout=2)
    try:
        [result] = wrong.send([event(1)])
    finally:
        wrong.close()
    assert result.outcome is Outcome.PERMANENT
    assert "401" in result.detail


def test_recipient_url_overrides_the_default(channel: WebhookChannel) -> None:
    with LoopbackPeer(crm_checking_signatures) as other:
        [result] = channel.send([event(5, recipient=other.url + "/hooks/declic")])
        assert result.outcome is Outcome.SENT
        assert [r.path for r in other.received] == ["/hooks/declic"]


def test_429_then_200(channel: WebhookChannel, crm: LoopbackPeer) -> None:
    crm.then(Reply(429, {"error": "slow down"}, {"Retry-After": "30"}))
    [first] = channel.send([event(1)])
    assert (first.outcome, first.retry_after) == (Outcome.TRANSIENT, 30.0)
    [second] = channel.send([event(1)])
    assert second.outcome is Outcome.SENT
    # The retry was signed again with its own timestamp and still verified.
    assert len(crm.received) == 2


def test_5xx_timeout_and_refused_connection_are_transient(crm: LoopbackPeer) -> None:
    crm.then(Reply(502, b"bad gateway"), Reply(201, {}, delay=1.0))
    channel = WebhookChannel(secret=SECRET, url=crm.url, timeout=0.3)
    try:
        assert channel.send([event(1)])[0].outcome is Outcome.TRANSIENT
        late = channel.send([event(2)])[0]
        assert late.outcome is Outcome.TRANSIENT and "délai" in late.detail
    finally:
        channel.close()
    with LoopbackPeer() as gone:
        url = gone.url
    refused = WebhookChannel(secret=SECRET, url=url, timeout=1)
    try:
        assert refused.send([event(3)])[0].outcome is Outcome.TRANSIENT
    finally:
        refused.close()


def test_missing_url_is_permanent_without_a_request(crm: LoopbackPeer) -> None:
    channel = WebhookChannel(secret=SECRET, timeout=1)
    try:
        [no_url] = channel.send([event(1)])
    finally:
        channel.close()
    assert no_url.outcome is Outcome.PERMANENT and "absente" in no_url.detail
    assert crm.received == []


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="DECLIC_WEBHOOK_SECRET"):
        WebhookChannel(secret="short", url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="is required"):
        WebhookChannel(url="http://127.0.0.1:1")


def test_batch_order_is_kept(channel: WebhookChannel, crm: LoopbackPeer) -> None:
    results = channel.send([event(i) for i in range(1, 41)])
    assert [r.message_id for r in results] == list(range(1, 41))
    assert all(r.outcome is Outcome.SENT for r in results)
    assert len({r.headers["idempotency-key"] for r in crm.received}) == 40


def test_a_lost_lease_abandons_the_message_without_a_request(
    channel: WebhookChannel, crm: LoopbackPeer
) -> None:
    results = channel.send([event(1), event(2)], on_handoff=lambda message_id: message_id == 2)
    assert [r.outcome for r in results] == [Outcome.ABANDONED, Outcome.SENT]
    assert [r.json()["message_id"] for r in crm.received] == [2]


def test_from_settings(crm: LoopbackPeer) -> None:
    channel = factory_for("webhook")(SimpleNamespace(webhook_secret=SECRET, webhook_url=crm.url))
    try:
        assert channel.send([event(1)])[0].outcome is Outcome.SENT
    finally:
        channel.close()


def test_each_partner_is_signed_with_its_own_secret(crm: LoopbackPeer) -> None:
    other_secret = "other-partner-secret-0123"
    channel = WebhookChannel(secrets={crm.url: SECRET, "https://crm.other.example": other_secret}, timeout=2)
    try:
        assert channel.secret_for(crm.url + "/declic") == SECRET
        assert channel.secret_for("https://crm.other.example/hooks") == other_secret
        [result] = channel.send([event(1, recipient=crm.url + "/declic")])
        assert result.outcome is Outcome.SENT  # the CRM verified it with its own secret
        # No default secret: a URL that belongs to no partner is not signed with someone else's key.
        [unknown] = channel.send([event(2, recipient="http://127.0.0.1:9/nobody")])
        assert unknown.outcome is Outcome.PERMANENT and "aucune clé" in unknown.detail
    finally:
        channel.close()


def test_secrets_can_come_as_json_from_the_environment(
    crm: LoopbackPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECLIC_WEBHOOK_SECRETS", json.dumps({crm.url: SECRET}))
    channel = factory_for("webhook")(Settings(webhook_url=crm.url))
    try:
        assert channel.send([event(1)])[0].outcome is Outcome.SENT
    finally:
        channel.close()
    with pytest.raises(ValueError, match="at least 16"):
        WebhookChannel(secrets={crm.url: "short"})


def test_missing_secret_holds_the_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECLIC_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("DECLIC_WEBHOOK_SECRETS", raising=False)
    channel = factory_for("webhook")(SimpleNamespace(webhook_url="http://127.0.0.1:9"))
    [result] = channel.send([event(1)])
    assert result.outcome is Outcome.TRANSIENT and "DECLIC_WEBHOOK_SECRET" in result.detail
