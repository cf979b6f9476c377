"""Short links (issue 13, point 5): five typable characters, a keyed permutation of the message id."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.core.links import links_for
from orchestrator.core.short_codes import ALPHABET, BASE, CodeError, read_code, short_code, short_url

SECRET = "a-test-secret-of-32-characters!!"


def test_codes_round_trip_and_stay_five_characters():
    ids = [*range(0, 2000), BASE**5 - 1]
    codes = [short_code(SECRET, i) for i in ids]
    assert all(len(c) == 5 and set(c) <= set(ALPHABET) for c in codes)
    assert len(set(codes)) == len(codes)
    assert [read_code(SECRET, c) for c in codes] == ids
    assert read_code(SECRET, short_code(SECRET, BASE**5)) == BASE**5  # beyond: six characters, still unique


def test_codes_need_the_secret_and_say_nothing_about_neighbours():
    assert short_code(SECRET, 41) != short_code("another-secret-of-32-characters!", 41)
    a, b = short_code(SECRET, 41), short_code(SECRET, 42)
    assert sum(x == y for x, y in zip(a, b, strict=True)) <= 2
    with pytest.raises(CodeError):
        read_code(SECRET, "0O1lI")  # characters that read alike on paper are never issued
    with pytest.raises(CodeError):
        read_code(SECRET, "ab")


def test_links_carry_a_short_link_of_at_most_eight_characters_after_the_host():
    links = links_for(SECRET, "https://declic.example.fr/", 123456, now=dt.datetime.now(dt.UTC))
    short = links["short"]
    assert short == short_url(SECRET, "https://declic.example.fr", 123456)
    assert short.startswith("https://declic.example.fr/s/") and len(short.split("example.fr", 1)[1]) <= 8
    assert read_code(SECRET, short.rsplit("/", 1)[1]) == 123456
