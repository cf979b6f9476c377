"""A real HTTP peer on loopback that answers like an SMS provider or a partner's CRM.

Used by the channel tests, the benchmarks and the demo: a `ThreadingHTTPServer` in a thread (or a
process, `python -m integrations.loopback --port 8025 --shape octopush`) that records every request and
answers from a script of replies, then with the provider's normal success shape.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    """One request the peer received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body read as JSON."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: status, JSON body (or raw bytes), headers, and a delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


_ids = itertools.count(1)


def octopush_ok(request: Received) -> Reply:
    """Octopush's success answer to `sms-campaign/send`."""
    return Reply(
        200,
        {
            "sms_ticket": f"sms_{next(_ids):013x}",
            "number_of_contacts": 1,
            "total_cost": 0.045,
            "number_of_sms_needed": 1,
            "residual_credit": 99.5,
        },
    )


def generic_ok(request: Received) -> Reply:
    """The generic JSON protocol's success answer."""
    return Reply(200, {"id": f"msg-{next(_ids)}", "status": "accepted"})


def webhook_ok(request: Received) -> Reply:
    """A partner CRM that accepts the event."""
    return Reply(202, {"received": True})


SHAPES: dict[str, Callable[[Received], Reply]] = {
    "octopush": octopush_ok,
    "generic": generic_ok,
    "webhook": webhook_ok,
}


class LoopbackPeer:
    """A recording HTTP server on 127.0.0.1: scripted replies first, then `default` for every request."""

    def __init__(self, default: Callable[[Received], Reply] = generic_ok, *, record: bool = True) -> None:
        self.default = default
        self.record = record
        self.received: list[Received] = []
        self._script: collections.deque[Reply | Callable[[Received], Reply]] = collections.deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -----------------------------------------------------------------------------------

    def then(self, *replies: Reply | Callable[[Received], Reply]) -> LoopbackPeer:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)
        return self

    def _next_reply(self, request: Received) -> Reply:
        with self._lock:
            if self.record:
                self.received.append(request)
            scripted = self._script.popleft() if self._script else None
        if scripted is None:
            return self.default(request)
        return scripted(request) if callable(scripted) else scripted

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        assert self._server is not None, "peer not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> LoopbackPeer:
        """Listen on 127.0.0.1 (port 0: any free port) and serve in a daemon thread."""
        peer = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps connections alive, as real providers do; clients reuse them.
            protocol_version = "HTTP/1.1"
            # Buffer the reply so headers and body leave in one segment: two small writes would meet
            # the client's delayed ACK (Nagle) and cost 40 ms per request.
            wbufsize = 64 * 1024

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                reply = peer._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, bytes):
                    payload = reply.body
                elif reply.body is None:
                    payload = b""
                else:
                    payload = json.dumps(reply.body).encode("utf-8")
                try:
                    self.send_response(reply.status)
                    if reply.body is not None and not isinstance(reply.body, bytes):
                        self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a timeout test): nothing left to answer.
                    self.close_connection = True

            do_POST = _serve
            do_GET = _serve
            do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="loopback-peer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Serve a peer from the command line until interrupted (for benchmarks and the demo)."""
    parser = argparse.ArgumentParser(
        description="A loopback HTTP peer that answers like an SMS provider or a CRM."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="generic")
    args = parser.parse_args()
    peer = LoopbackPeer(SHAPES[args.shape], record=False).start(args.port)
    print(peer.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        peer.stop()


if __name__ == "__main__":
    main()
