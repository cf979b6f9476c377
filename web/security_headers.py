"""Security headers on every answer (pages, API, static files, errors): a pure ASGI middleware.

- Content-Security-Policy: scripts, styles, images and form targets from this site only; no inline script
  or style (the pages have none: no JavaScript at all, one stylesheet in /static), no plugin, no framing.
  The API documentation page (/docs) also loads Swagger UI from its CDN; its start-up script is a static
  file (web/static/docs.js), never inline.
- X-Frame-Options: DENY (older browsers; `frame-ancestors 'none'` for the others), X-Content-Type-Options:
  nosniff, Referrer-Policy: no-referrer (link tokens never leak to another site through the Referer),
  Strict-Transport-Security when the site is served over HTTPS.
A header a route sets itself is kept.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SWAGGER_CDN = "https://cdn.jsdelivr.net"

PAGE_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# Swagger UI: its bundle and stylesheet from the CDN; the styles it sets on elements at run time need
# 'unsafe-inline' for style only (never for script).
DOCS_POLICY = "; ".join([
    "default-src 'self'",
    f"script-src 'self' {SWAGGER_CDN}",
    f"style-src 'self' {SWAGGER_CDN} 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP answer; HSTS when served over HTTPS (or when the public
    base URL is HTTPS, behind a proxy that terminates TLS)."""

    def __init__(self, app: ASGIApp, *, https: bool = False, docs_paths: tuple[str, ...] = ("/docs",)) -> None:
        self.app = app
        self.https = https
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope.get("path") in self.docs_paths else PAGE_POLICY
        headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if self.https or scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in headers if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
