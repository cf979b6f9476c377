"""Pure webhook signing rules."""

from __future__ import annotations

import hashlib
import hmac

from integrations.webhook import sign, verify

SECRET = "partner-secret-0123456789"
BODY = '{"type": "declic.message", "text": "Bonjour, cœur à 15 €"}'.encode()


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1795766400." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1795766400, BODY) == "sha256=" + expected


def test_a_fresh_signature_verifies() -> None:
    signature = sign(SECRET, 1795766400, BODY)
    assert verify(SECRET, "1795766400", BODY, signature, now=1795766410)


def test_tampering_with_body_timestamp_or_secret_fails() -> None:
    signature = sign(SECRET, 1795766400, BODY)
    assert not verify(SECRET, 1795766400, BODY + b" ", signature, now=1795766400)
    assert not verify(SECRET, 1795766401, BODY, signature, now=1795766400)
    assert not verify("another-secret-0123456789", 1795766400, BODY, signature, now=1795766400)
    assert not verify(SECRET, 1795766400, BODY, "sha256=" + "0" * 64, now=1795766400)
    assert not verify(SECRET, 1795766400, BODY, "", now=1795766400)
    assert not verify(SECRET, "not-a-time", BODY, signature, now=1795766400)


def test_an_old_request_is_refused_as_a_replay() -> None:
    signature = sign(SECRET, 1795766400, BODY)
    assert verify(SECRET, 1795766400, BODY, signature, now=1795766400 + 299)
    assert not verify(SECRET, 1795766400, BODY, signature, now=1795766400 + 301)
    assert not verify(SECRET, 1795766400, BODY, signature, now=1795766400 - 301)
    assert verify(SECRET, 1795766400, BODY, signature, now=1795766400 + 3000, tolerance=3600)
