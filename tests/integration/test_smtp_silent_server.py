"""A server that goes silent in the middle of a transaction (issue 18: the SMTP timeout is kept by the kernel,
SO_RCVTIMEO on a blocking socket, instead of Python's poll before each call): the wait still ends, the message is
answered TRANSIENT as a lost connection, nothing is handed over, and the channel is usable afterwards."""

from __future__ import annotations

import socket
import threading

from integrations.base import OutgoingMessage
from integrations.email_smtp import SmtpChannel
from orchestrator.core.outcomes import Outcome


def silent_after_ehlo() -> tuple[socket.socket, list[bytes]]:
    """A listening socket whose one client is greeted and answered to EHLO (with PIPELINING), then never again."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    heard: list[bytes] = []

    def serve() -> None:
        client, _ = server.accept()
        with client:
            client.sendall(b"220 silent.test ESMTP\r\n")
            heard.append(client.recv(1024))  # EHLO
            client.sendall(b"250-silent.test\r\n250 PIPELINING\r\n")
            while data := client.recv(65536):  # the envelope, never answered, until the client hangs up
                heard.append(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, heard


def test_a_silent_server_ends_in_a_lost_connection_not_a_hang():
    server, heard = silent_after_ehlo()
    channel = SmtpChannel("127.0.0.1", server.getsockname()[1], sender="bonjour@declic.example", timeout=0.5)
    handed: list[int] = []
    message = OutgoingMessage(message_id=7, channel="email", recipient="contact@exemple.fr", subject="Bonjour",
                              body="Bonjour,\n", rfc_message_id="<declic.7@test>")
    results: list = []
    worker = threading.Thread(target=lambda: results.extend(channel.send([message], on_handoff=handed.append)),
                              daemon=True)
    worker.start()
    worker.join(60)  # a guard only: without a timeout the send would never end
    try:
        assert not worker.is_alive()
        [result] = results
        assert result.outcome is Outcome.TRANSIENT
        assert result.detail.startswith("connexion SMTP perdue")
        assert handed == []  # nothing went past the envelope
        assert any(b"RCPT TO:<contact@exemple.fr>" in data for data in heard)
    finally:
        channel.close()
        server.close()
