"""Link tokens (issue 18): the compact keyed-HMAC form, and the itsdangerous tokens of links already sent."""

from __future__ import annotations

import datetime as dt

import pytest
from itsdangerous import URLSafeTimedSerializer

from orchestrator.core.links import MAX_AGE, TokenError, links_for, make_token, read_token
from orchestrator.core.short_codes import short_url

SECRET = "test-secret-0123456789abcdef"
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)  # the App's clock: tokens are made and read at given moments


def old_token(purpose: str, message_id: int, secret: str = SECRET) -> str:
    """A token as Déclic signed them before issue 18 (itsdangerous, salt "declic.links"), signed now."""
    return URLSafeTimedSerializer(secret, salt="declic.links").dumps([purpose, message_id])


@pytest.mark.parametrize("message_id", [0, 1, 255, 256, 123_456, 2**40 + 7, 2**63 - 1])
def test_a_new_token_reads_back_its_message_and_is_compact(message_id):
    for purpose in ("u", "r", "m", "a"):
        token = make_token(SECRET, purpose, message_id, now=NOW)
        assert "." not in token and "=" not in token and len(token) <= 40
        assert read_token(SECRET, purpose, token, now=NOW) == message_id


def test_links_already_sent_keep_verifying():
    now = dt.datetime.now(dt.UTC)  # itsdangerous signs them at the wall clock
    for purpose in ("u", "r", "m", "a"):
        assert read_token(SECRET, purpose, old_token(purpose, 98765), now=now) == 98765
    with pytest.raises(TokenError):
        read_token(SECRET, "u", old_token("r", 98765), now=now)  # the purpose still counts
    with pytest.raises(TokenError):
        read_token(SECRET, "r", old_token("r", 98765, "another-secret-0123456789abcdef"), now=now)
    later = now + dt.timedelta(seconds=MAX_AGE["r"] + 60)
    with pytest.raises(TokenError, match="expiré"):
        read_token(SECRET, "r", old_token("r", 98765), now=later)  # judged at the given moment
    assert read_token(SECRET, "u", old_token("u", 98765), now=later) == 98765


def test_forged_foreign_and_cross_purpose_tokens_are_refused():
    good = make_token(SECRET, "r", 42, now=NOW)
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for token in (flipped, good[:-1], good + "A", make_token("another-secret-0123456789abcdef", "r", 42, now=NOW),
                  make_token(SECRET, "m", 42, now=NOW), "", "!!!", "AAAA"):
        with pytest.raises(TokenError):
            read_token(SECRET, "r", token, now=NOW)


def test_new_tokens_expire_like_the_old_ones():
    old = make_token(SECRET, "r", 7, now=NOW)
    keep = make_token(SECRET, "u", 7, now=NOW)
    later = NOW + dt.timedelta(seconds=MAX_AGE["r"] + 60)
    assert read_token(SECRET, "r", old, now=NOW + dt.timedelta(seconds=MAX_AGE["r"] - 60)) == 7
    with pytest.raises(TokenError, match="expiré"):
        read_token(SECRET, "r", old, now=later)
    assert read_token(SECRET, "u", keep, now=later) == 7  # an opt-out link lives five years


def test_the_same_moment_signs_the_same_token():
    # Under a fixed clock (tests, the demo) the links of a message do not depend on when it is rendered.
    assert make_token(SECRET, "m", 7, now=NOW) == make_token(SECRET, "m", 7, now=NOW + dt.timedelta(microseconds=9))
    assert make_token(SECRET, "m", 7, now=NOW) != make_token(SECRET, "m", 7, now=NOW + dt.timedelta(seconds=1))


def test_lazy_links_give_the_same_short_link_when_read():
    links = links_for(SECRET, "https://declic.example/", 31337, now=NOW, lazy_short=True)
    assert "short" not in links
    assert links["short"] == short_url(SECRET, "https://declic.example", 31337)
    assert read_token(SECRET, "r", links["landing"].rsplit("/", 1)[1], now=NOW) == 31337
    assert read_token(SECRET, "u", links["unsubscribe"].rsplit("/", 1)[1], now=NOW) == 31337
    eager = links_for(SECRET, "https://declic.example/", 31337, now=NOW)
    assert eager["short"] == links["short"]
