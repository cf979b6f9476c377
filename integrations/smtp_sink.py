"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: for the demo, tests and benchmarks.

It counts messages by Message-ID (to prove exactly-once delivery), keeps the parsed messages in memory
(optionally only the count), writes the first few to a folder, and can refuse service for a while.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from email import message_from_bytes
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller


_HEADERS = BytesParser(policy=compat32)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd API)
        if self.sink.reject_rcpt.get(address):
            return self.sink.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        return self.sink.accept(envelope.content)


class SmtpSink:
    """An SMTP server on 127.0.0.1 that records received messages."""

    def __init__(self, port: int | None = None, keep: bool = True, folder: Path | None = None,
                 write_first: int = 0) -> None:
        self.port = port or free_port()
        self.keep, self.folder, self.write_first = keep, folder, write_first
        self.by_message_id: Counter[str] = Counter()
        self.messages: list[Message] = []
        self.reject_rcpt: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 Unknown user"
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def accept(self, content: bytes) -> str:
        if self.keep:
            msg = message_from_bytes(content, policy=default_policy)
            message_id = str(msg.get("Message-ID", "")).strip()
        else:  # counting only: read the headers, not the body (benchmarks)
            message_id = str(_HEADERS.parsebytes(content, headersonly=True).get("Message-ID", "")).strip()
        with self._lock:
            self.by_message_id[message_id] += 1
            if self.keep:
                self.messages.append(msg)
            count = sum(self.by_message_id.values())
            if self.folder is not None and count <= self.write_first:
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / f"message-{count:03d}.eml").write_bytes(content)
        return "250 Message accepted for delivery"

    @property
    def received(self) -> int:
        """Messages received in all."""
        with self._lock:
            return sum(self.by_message_id.values())

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once."""
        with self._lock:
            return {k: v for k, v in self.by_message_id.items() if v > 1}

    def start(self) -> SmtpSink:
        handler = _Handler(self)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port,
                                      server_kwargs={"data_size_limit": 10 * 1024 * 1024})
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()




def main() -> None:
    """Run a sink in the foreground (benchmarks run it in its own process): `python -m integrations.smtp_sink PORT`."""
    import signal
    import sys

    sink = SmtpSink(port=int(sys.argv[1]) if len(sys.argv) > 1 else None, keep=False).start()
    print(sink.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sink.stop()
    print(f"received {sink.received} duplicates {len(sink.duplicates())}", flush=True)


if __name__ == "__main__":
    main()
