"""A real HTTP server on loopback for feed tests: scripted answers per path, or a handler function.

Each path has a queue of `Answer`s served in order (the last one repeats), or a callable that builds the
answer from the request. Every request is recorded (path, query, headers) so tests can check what the
watcher sent: conditional headers, tokens, filters, cursors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Answer:
    """One scripted answer; `cut_at` sends only that many body bytes, then drops the connection."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_at: int | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Answer:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FeedServer:
    """Start with `with FeedServer() as server:`; `server.url(path)` gives the address to register.

    It listens on loopback (127.0.0.1 by default, another 127.x.y.z address for a second host): a feed
    that fetches from it must be registered with `local=True`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, list[Answer] | Callable[[Seen], Answer]] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                parsed = urlparse(self.path)
                seen = Seen(
                    parsed.path,
                    {k: v[-1] for k, v in parse_qs(parsed.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                )
                server.seen.append(seen)
                route = server.routes.get(parsed.path)
                if route is None:
                    answer = Answer(404, b"not found")
                elif callable(route):
                    answer = route(seen)
                else:
                    answer = route.pop(0) if len(route) > 1 else route[0]
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                if answer.cut_at is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if answer.status == 304:
                    return
                if answer.cut_at is not None:
                    self.wfile.write(answer.body[: answer.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(answer.body)

        self.host = host
        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.httpd.server_address[1]}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
