"""Link tokens (issue 18): the compact keyed-HMAC form, and the itsdangerous tokens of links already sent."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from orchestrator.core.links import MAX_AGE, TokenError, links_for, make_token, read_token
from orchestrator.core.short_codes import short_url

SECRET = "test-secret-0123456789abcdef"


def old_token(purpose: str, message_id: int, secret: str = SECRET) -> str:
    """A token as Déclic signed them before issue 18 (itsdangerous, salt "declic.links")."""
    return URLSafeTimedSerializer(secret, salt="declic.links").dumps([purpose, message_id])


@pytest.mark.parametrize("message_id", [0, 1, 255, 256, 123_456, 2**40 + 7, 2**63 - 1])
def test_a_new_token_reads_back_its_message_and_is_compact(message_id):
    for purpose in ("u", "r", "m", "a"):
        token = make_token(SECRET, purpose, message_id)
        assert "." not in token and "=" not in token and len(token) <= 40
        assert read_token(SECRET, purpose, token) == message_id


def test_links_already_sent_keep_verifying():
    for purpose in ("u", "r", "m", "a"):
        assert read_token(SECRET, purpose, old_token(purpose, 98765)) == 98765
    with pytest.raises(TokenError):
        read_token(SECRET, "u", old_token("r", 98765))  # the purpose still counts
    with pytest.raises(TokenError):
        read_token(SECRET, "r", old_token("r", 98765, "another-secret-0123456789abcdef"))


def test_forged_foreign_and_cross_purpose_tokens_are_refused():
    good = make_token(SECRET, "r", 42)
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for token in (flipped, good[:-1], good + "A", make_token("another-secret-0123456789abcdef", "r", 42),
                  make_token(SECRET, "m", 42), "", "!!!", "AAAA"):
        with pytest.raises(TokenError):
            read_token(SECRET, "r", token)


def test_new_tokens_expire_like_the_old_ones(monkeypatch):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - MAX_AGE["r"] - 60)
    old = make_token(SECRET, "r", 7)
    keep = make_token(SECRET, "u", 7)
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(TokenError, match="expiré"):
        read_token(SECRET, "r", old)
    assert read_token(SECRET, "u", keep) == 7  # an opt-out link lives five years


def test_lazy_links_give_the_same_short_link_when_read():
    links = links_for(SECRET, "https://declic.example/", 31337, lazy_short=True)
    assert "short" not in links
    assert links["short"] == short_url(SECRET, "https://declic.example", 31337)
    assert read_token(SECRET, "r", links["landing"].rsplit("/", 1)[1]) == 31337
    assert read_token(SECRET, "u", links["unsubscribe"].rsplit("/", 1)[1]) == 31337
    eager = links_for(SECRET, "https://declic.example/", 31337)
    assert eager["short"] == links["short"]
