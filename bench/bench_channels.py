"""Channel throughput: SMS and webhooks to a local HTTP peer, letters written as PDFs.

    python -m bench.bench_channels [--quick]

- SMS: `SmsChannel` (Octopush and generic formats) against `integrations.loopback` serving the
  provider's real answer shape from its own process, at several worker counts (one `requests.Session`
  per worker thread, keep-alive). Numbers are checked with `phonenumbers` on the way, as in production.
- Webhook: the same peer, with an HMAC-SHA256 signature per request.
- Letters: `LetterChannel` writing batches of 100 (one merged PDF rendered, split per business, manifest)
  into a temporary folder.

One JSON line per figure (collected by `python -m bench`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import time

from bench.common import PY, emit, start_process
from integrations.base import OutgoingMessage
from integrations.smtp_sink import free_port
from orchestrator.core.outcomes import Outcome

BODY_SMS = (
    "Boulangers de Rennes : gagnez 1 h par semaine sur les commandes. RDV gratuit avec Paul. STOP au 36111"
)
BODY_LETTER = (
    "Bonjour Madame Martin,\n\n"
    "Vous êtes boulangère à Rennes. Un boulanger de votre quartier, Paul, prend maintenant les commandes de "
    "gâteaux par téléphone et sur un petit site. Il gagne une heure par semaine.\n"
    "Nous vous proposons un rendez-vous d'une heure dans votre boutique, gratuit. "
    "Le site coûte ensuite 9 € par "
    "mois, sans engagement. Attention aux faux conseillers : nous ne demandons jamais vos codes bancaires.\n"
    "Pour en parler, appelez Paul au 06 12 34 56 78 ou répondez à ce courrier.\n"
    "Si vous ne voulez plus recevoir nos courriers, dites-le au 02 99 00 00 00.\n\n"
    "Bien à vous,\nLa Ville de Rennes"
)


def sms_batch(n: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            message_id=i,
            channel="sms",
            recipient=f"06{i % 100_000_000:08d}",
            body=BODY_SMS,
            rfc_message_id=f"<declic.{i}@bench>",
        )
        for i in range(1, n + 1)
    ]


def bench_http(kind: str, shape: str, n: int, workers_list: list[int]) -> None:
    from integrations.sms_http import SmsChannel
    from integrations.webhook import WebhookChannel

    port = free_port()
    proc = start_process(
        [PY, "-m", "integrations.loopback", "--port", str(port), "--shape", shape],
        {},
        ready_url=f"http://127.0.0.1:{port}/ready",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for workers in workers_list:
            if kind == "sms":
                channel = SmsChannel(
                    provider=shape,
                    url=url + "/send",
                    api_key="bench-key",
                    login="bench@declic",
                    sender="DECLIC",
                    workers=workers,
                    timeout=10,
                )
            else:
                channel = WebhookChannel(
                    secret="bench-secret-0123456789", url=url + "/hook", workers=workers, timeout=10
                )
            batch = sms_batch(n)
            channel.send(batch[: min(200, n)])  # warm the connections
            batch_size = 500  # the dispatcher's default batch
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.process_time()
            sent = 0
            for start in range(0, n, batch_size):
                results = channel.send(batch[start : start + batch_size])
                sent += sum(r.outcome is Outcome.SENT for r in results)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            channel.close()
            emit(
                figure=f"{kind}_per_second",
                provider=shape,
                workers=workers,
                messages=n,
                sent=sent,
                seconds=round(seconds, 3),
                per_second=round(n / seconds, 1),
                client_cpu_ms_per_message=round(1000 * cpu / n, 3),
                load_before=round(load, 2),
                peer="integrations.loopback (ThreadingHTTPServer, own process, HTTP/1.1 keep-alive)",
            )
    finally:
        proc.terminate()
        proc.wait(10)


def letter(i: int) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=i,
        channel="letter",
        recipient="",
        subject="Gagner du temps sur les commandes de gâteaux",
        body=BODY_LETTER,
        meta={
            "siret": f"{12345678900000 + i:014d}",
            "address": {
                "name": f"Boulangerie Martin {i}",
                "contact": "Mme Élodie Martin",
                "street": f"{i % 200 + 1}, rue de l'Église",
                "postcode": "35000",
                "city": "Rennes",
            },
        },
    )


def bench_letters(n: int, batch_size: int) -> None:
    from integrations.letter_pdf import LetterChannel

    root = tempfile.mkdtemp(prefix="declic-letters-")
    try:
        channel = LetterChannel(
            letter_dir=root,
            sender_name="Ville de Rennes",
            sender_city="Rennes",
            sender_address="Hôtel de Ville | Place de la Mairie | 35000 Rennes",
            today=lambda: dt.date(2026, 11, 27),
        )
        channel.send([letter(0)])  # font files read once, as in a long-running worker
        messages = [letter(i) for i in range(1, n + 1)]
        load = os.getloadavg()[0]
        started, cpu = time.perf_counter(), time.process_time()
        written = 0
        for start in range(0, n, batch_size):
            results = channel.send(messages[start : start + batch_size])
            written += sum(r.outcome is Outcome.SENT for r in results)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        emit(
            figure="letters_per_second",
            letters=n,
            written=written,
            batch_size=batch_size,
            seconds=round(seconds, 3),
            per_second=round(n / seconds, 1),
            cpu_ms_per_letter=round(1000 * cpu / n, 2),
            load_before=round(load, 2),
            output="one PDF per business + merged PDF + CSV manifest per batch, on local disk",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(quick: bool = False) -> None:
    n_sms = 1000 if quick else 5000
    bench_http("sms", "octopush", n_sms, [1, 8] if quick else [1, 4, 8, 16])
    bench_http("sms", "generic", n_sms, [8])
    bench_http("webhook", "webhook", n_sms, [8])
    bench_letters(200 if quick else 1000, 100)
    bench_letters(500 if quick else 1000, 500)  # the dispatcher's default batch size


if __name__ == "__main__":
    main("--quick" in sys.argv)
