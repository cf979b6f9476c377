"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: for the demo, tests and benchmarks.

It counts messages by Message-ID (to prove exactly-once delivery), keeps the parsed messages in memory
(optionally only the count), writes the first few to a folder, and can refuse service for a while
(`refuse_for`: every RCPT answered "451 4.3.2", as a relay under maintenance does), or refuse one recipient
domain (`refuse_domains`: "421 4.7.0" for orange.fr, as a provider slowing a sender down does). It offers PIPELINING
like Postfix or Exim: aiosmtpd reads commands in order from its stream, so pipelined ones just work.

`python -m integrations.smtp_sink PORT [--log FILE]` runs one in its own process; with --log it appends
each received Message-ID to FILE as it arrives (a test that kills its client still knows what came in).
"""

from __future__ import annotations

import asyncio
import re
import resource
import signal
import socket
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def message_id_of(content: bytes) -> str:
    """The Message-ID header of raw message bytes, read from the header section alone ("" when absent)."""
    end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[:end + 2]
    match = _MESSAGE_ID.search(head)
    return match[1].decode("ascii", errors="replace") if match else ""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 (aiosmtpd API)
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd API)
        if time.monotonic() < self.sink.refuse_until:
            return "451 4.3.2 Service temporarily unavailable, try again later"
        if self.sink.reject_rcpt.get(address):
            return self.sink.reject_rcpt[address]
        domain = address.rpartition("@")[2].lower()
        if self.sink.refuse_domains.get(domain):  # a provider that defers this domain's mail (e.g. 421 4.7.0)
            self.sink.refused[domain] += 1
            return self.sink.refuse_domains[domain]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        if self.sink.latency:  # a remote relay's round trip and queueing, without using this machine's CPU
            await asyncio.sleep(self.sink.latency)
        return self.sink.accept(envelope.content)


class SmtpSink:
    """An SMTP server on 127.0.0.1 that records received messages."""

    def __init__(self, port: int | None = None, keep: bool = True, folder: Path | None = None,
                 write_first: int = 0, log: Path | None = None, latency: float = 0.0) -> None:
        self.port = port or free_port()
        self.keep, self.folder, self.write_first = keep, folder, write_first
        self.latency = latency  # seconds before each DATA is answered (benchmarks: a relay across a network)
        self.arrivals: list[float] = []  # time.monotonic() of each message accepted, in order (benchmarks)
        self._count = 0
        self.refuse_until = 0.0  # time.monotonic() before which every RCPT is refused (451)
        self._log = open(log, "a", buffering=1, encoding="ascii", errors="replace") if log else None
        self.by_message_id: Counter[str] = Counter()
        self.messages: list[Message] = []
        self.reject_rcpt: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 Unknown user"
        # recipient domain -> SMTP reply to every RCPT of it, e.g. "421 4.7.0 Too many messages, slow down"
        self.refuse_domains: dict[str, str] = {}
        self.refused: Counter[str] = Counter()  # RCPTs refused per domain (by refuse_domains)
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def accept(self, content: bytes) -> str:
        if self.keep:
            msg = message_from_bytes(content, policy=default_policy)
            message_id = str(msg.get("Message-ID", "")).strip()
        else:  # counting only: find the header, parse nothing (benchmarks)
            message_id = message_id_of(content)
        with self._lock:
            self.by_message_id[message_id] += 1
            self._count += 1
            self.arrivals.append(time.monotonic())
            if self._log is not None:
                self._log.write(message_id + "\n")
            if self.keep:
                self.messages.append(msg)
            if self.folder is not None and self._count <= self.write_first:
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / f"message-{self._count:03d}.eml").write_bytes(content)
        return "250 Message accepted for delivery"

    @property
    def received(self) -> int:
        """Messages received in all."""
        with self._lock:
            return self._count

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once."""
        with self._lock:
            return {k: v for k, v in self.by_message_id.items() if v > 1}

    def refuse_for(self, seconds: float) -> None:
        """Answer every RCPT with a temporary refusal (451 4.3.2) for `seconds` from now."""
        self.refuse_until = time.monotonic() + seconds

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
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    """Run a sink in the foreground (benchmarks run it in its own process): `python -m integrations.smtp_sink PORT`."""
    args = sys.argv[1:]
    log = None
    if "--log" in args:
        at = args.index("--log")
        log = Path(args[at + 1])
        del args[at:at + 2]
    sink = SmtpSink(port=int(args[0]) if args else None, keep=False, log=log).start()
    print(sink.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sink.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"received {sink.received} duplicates {len(sink.duplicates())} "
          f"cpu {usage.ru_utime + usage.ru_stime:.2f}", flush=True)


if __name__ == "__main__":
    main()
