"""The base64 body lines of an e-mail (issue 18: encoded at once, then cut) are those of the 57-byte pieces."""

from __future__ import annotations

import binascii
import random

from integrations.email_smtp import _base64_lines


def by_pieces(text: str) -> bytes:
    """RFC 2045 lines as the channel wrote them before: each 57-byte piece encoded alone, CRLF after each."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return b"".join(binascii.b2a_base64(data[i:i + 57]).replace(b"\n", b"\r\n") for i in range(0, len(data), 57))


def test_body_lines_match_the_piecewise_encoding():
    rng = random.Random(18)
    for size in (0, 1, 2, 3, 18, 19, 56, 57, 58, 113, 114, 171, 1000, 9999):
        for _ in range(10):
            text = "".join(rng.choice("abcé\nà €\r ’") for _ in range(size))
            got = _base64_lines(text)
            assert got == by_pieces(text)
            assert all(len(line) <= 76 for line in got.split(b"\r\n"))
            assert binascii.a2b_base64(got.replace(b"\r\n", b"")) == text.replace("\r\n", "\n").replace(
                "\n", "\r\n").encode("utf-8")
