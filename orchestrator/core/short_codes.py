"""Short links for SMS and letters: `/s/<code>`, five characters a person can type from paper.

A code is a keyed permutation of the message id (a Feistel network keyed by the settings' secret, walked
over the range of 5-character codes): nothing is stored, nothing can be computed without the secret, and the
web app reads a code back into its message id with the same secret (`read_code`). Neighbouring messages get
unrelated codes, so knowing one's own link says nothing about another's. What a code cannot carry in five
characters is a signature strong enough against blind guessing: `/s/` resolves only to an existing message
no older than a click token may be (`orchestrator.core.links.MAX_AGE["r"]`), and leads to the same click
tracking and landing page as `/r/<token>`, which show nothing more than the message itself said.

The alphabet leaves out characters that read alike on paper (0/O/o, 1/l/I): 56 symbols, so five characters
number 550 million messages; a longer code (six characters) takes over beyond, never a collision.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
BASE = len(ALPHABET)
LENGTH = 5
ROUTE = "/s/"
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_ROUNDS = 8


class CodeError(ValueError):
    """A code that is not one Déclic made."""


@lru_cache(maxsize=16)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"declic.short-links", hashlib.sha256).digest()[:32]


def _round(key: bytes, index: int, length: int, value: int, bits: int) -> int:
    digest = hashlib.blake2b(f"{length}:{index}:{value}".encode("ascii"), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def _feistel(key: bytes, length: int, value: int, bits: int, inverse: bool = False) -> int:
    half = bits // 2
    mask = (1 << half) - 1
    left, right = value >> half, value & mask
    rounds = range(_ROUNDS - 1, -1, -1) if inverse else range(_ROUNDS)
    for index in rounds:
        if inverse:
            left, right = right ^ _round(key, index, length, left, half), left
        else:
            left, right = right, left ^ _round(key, index, length, right, half)
    return (left << half) | right


def _permute(key: bytes, length: int, value: int, inverse: bool = False) -> int:
    """A keyed permutation of [0, BASE**length): Feistel over the next even bit width, cycle-walking back in."""
    size = BASE**length
    bits = max(2, (size - 1).bit_length())
    bits += bits % 2
    while True:  # each step lands inside the range with probability > 1/4
        value = _feistel(key, length, value, bits, inverse)
        if value < size:
            return value


def _length_for(message_id: int) -> int:
    length = LENGTH
    while message_id >= BASE**length:
        length += 1
    return length


def short_code(secret: str, message_id: int) -> str:
    """The short code of one message (five characters up to 550 million messages)."""
    if message_id < 0:
        raise ValueError("message id négatif")
    length = _length_for(message_id)
    number = _permute(_key(secret), length, message_id)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, BASE)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def read_code(secret: str, code: str) -> int:
    """The message id of a code made with this secret, else CodeError (unknown characters, wrong length)."""
    if not LENGTH <= len(code) <= LENGTH + 3 or any(ch not in _INDEX for ch in code):
        raise CodeError("lien invalide")
    number = 0
    for ch in code:
        number = number * BASE + _INDEX[ch]
    message_id = _permute(_key(secret), len(code), number, inverse=True)
    if _length_for(message_id) != len(code):
        raise CodeError("lien invalide")  # a code of another length than its id would get: never issued
    return message_id


def short_url(secret: str, base_url: str, message_id: int) -> str:
    """The short link of one message: `https://host/s/Ab3xZ`."""
    return f"{base_url.rstrip('/')}{ROUTE}{short_code(secret, message_id)}"
