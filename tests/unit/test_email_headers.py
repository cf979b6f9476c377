"""Encoded header words (RFC 2047) never cut a word in two when the text has spaces: a reader that keeps the
folding whitespace between encoded words (Python's parser does in display names) would show "Départem ent"."""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header

from integrations.email_smtp import encode_header

NAME = "Service développement économique, Département d'Ille-et-Vilaine"


def test_a_long_display_name_is_cut_between_words():
    encoded = encode_header(NAME)
    assert len(encoded.split()) > 1  # more than one encoded word
    assert str(make_header(decode_header(encoded))) == NAME  # an RFC 2047 reader reads it whole
    parsed = email.message_from_string(f"From: {encoded} <a@exemple.fr>\n\nx", policy=policy.default)
    words = parsed["From"].addresses[0].display_name.split()
    assert words == NAME.split()  # no word cut in two, whatever the reader does with the folding


def test_a_name_without_spaces_still_fits_in_short_words():
    long_word = "é" * 60
    assert all(len(w) <= 75 for w in encode_header(long_word).split())
    assert str(make_header(decode_header(encode_header(long_word)))) == long_word
