"""Request body cap: a pure ASGI middleware that answers 413 (JSON, in French) to a body larger than
`DECLIC_MAX_BODY_BYTES`, before any route reads or parses it.

A declared `Content-Length` above the cap is refused at once; a body sent without one (chunked) is counted
as it arrives and refused as soon as it passes the cap, so no route ever holds more than the cap in memory.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_reason(limit: int) -> str:
    return f"requête trop volumineuse : au plus {limit} octets ; envoyez les données en plusieurs fois"


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the streamed body passes the cap: an HTTP error, so the app's own
    handlers answer it (FastAPI passes HTTP errors raised while it reads a form or JSON body through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_reason(limit))


def too_large_body(limit: int) -> bytes:
    return json.dumps({"detail": too_large_reason(limit)}, ensure_ascii=False).encode()


class BodyLimitMiddleware:
    """Refuse request bodies larger than `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:  # cannot happen with our routes (they read the body first); nothing more to say
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = too_large_body(self.max_bytes)
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
