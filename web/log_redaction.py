"""Access logs without secrets: the route stays readable, the tokens in it do not.

Links in messages carry signed tokens (`/r/<token>` click, `/m/<token>` owner page, `/u/<token>`
unsubscribe) and provider callbacks carry the shared hooks token in their query (`/hooks/...?token=`).
Anyone reading the server's log could replay them, so the access log shows `/u/***` and `token=***`.
"""

from __future__ import annotations

import logging
import re

# A signed link token: the path segment after /r/, /m/, /u/ or /s/ (short code) (a following /rappel... stays visible).
_LINK = re.compile(r"(?P<route>/[rmus]/)[^/?#\s\"]+")
# A secret in a query string: token, key, secret, signature, password (any case), up to the next & or #.
_QUERY = re.compile(r"(?P<name>[?&](?:[^=&#\s\"]*?)(?:token|key|secret|signature|password|pass)[^=&#\s\"]*=)"
                    r"[^&#\s\"]*", re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """`text` (a path with its query, or a log line) with link tokens and query secrets masked."""
    text = _LINK.sub(lambda m: m.group("route") + MASK, text)
    return _QUERY.sub(lambda m: m.group("name") + MASK, text)


class RedactTokens(logging.Filter):
    """A logging filter masking tokens in a record's arguments and message (uvicorn's access log passes the
    path as an argument: `'%s - "%s %s HTTP/%s" %d'`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


ACCESS_LOGGERS = ("uvicorn.access", "uvicorn.error")


def install(loggers: tuple[str, ...] = ACCESS_LOGGERS) -> None:
    """Put the filter on the web server's loggers (once; call after the server configured its logging)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
