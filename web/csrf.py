"""CSRF tokens for every form: a signed value tied to what the form acts on.

Owner pages tie it to the message token of the page (no session there); dashboard forms tie it to the
signed-in session's own random id. A token copied from another page or another session is refused.
"""

from __future__ import annotations

import hmac

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

MAX_AGE = 12 * 3600  # a form left open half a day still works


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="declic.csrf")


def make_csrf(secret: str, subject: str) -> str:
    """A token valid for forms acting on `subject` (a message token, a session id)."""
    return _serializer(secret).dumps(subject)


def check_csrf(secret: str, subject: str, token: str | None) -> bool:
    """True when `token` was made for `subject` with this secret and has not expired."""
    if not token or not subject:
        return False
    try:
        got = _serializer(secret).loads(token, max_age=MAX_AGE)
    except (BadSignature, SignatureExpired):
        return False
    return isinstance(got, str) and hmac.compare_digest(got, subject)
