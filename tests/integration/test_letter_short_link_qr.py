"""Letters (issue 13, point 6): the shipped letter gives the short link and a phone, never a long signed URL, and
the PDF ends with a QR code of that short link, read back from the written file."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from pypdf import PdfReader

from integrations.base import OutgoingMessage
from integrations.letter_pdf import LetterChannel, short_link_for
from orchestrator.core.links import links_for
from orchestrator.core.outcomes import Outcome
from templates.preview import sample_context
from templates.render import library

SECRET = "a-test-secret-of-32-characters!!"


def _rendered_letter(message_id: int) -> OutgoingMessage:
    links = links_for(SECRET, "https://declic.example.fr", message_id, now=dt.datetime.now(dt.UTC))
    ctx = sample_context("alimentation", "creation", links=links)
    ctx["sender"]["phone"] = None  # no phone for the sender: the ambassador's is given
    rendered = library().render(library().resolve("letter", "creation", "alimentation"), ctx)
    return OutgoingMessage(message_id=message_id, channel="letter", recipient="", subject=rendered.subject,
                           body=rendered.body, meta={"siret": "85312345600017", "address": {
                               "name": "Boulangerie du Cèdre", "street": "2 rue Haute", "postcode": "07000",
                               "city": "Privas"}})


def test_the_letter_text_gives_the_short_link_and_a_phone_never_a_signed_url():
    message = _rendered_letter(4242)
    links = links_for(SECRET, "https://declic.example.fr", 4242, now=dt.datetime.now(dt.UTC))
    assert links["short"] in message.body
    assert links["landing"] not in message.body and links["unsubscribe"] not in message.body
    assert "06 12 34 56 78" in message.body
    assert short_link_for(message) == links["short"]


def test_the_pdf_ends_with_a_qr_code_of_the_short_link(tmp_path: Path):
    channel = LetterChannel(letter_dir=tmp_path, sender_name="Privas Centre Ardèche",
                            sender_address="1 rue de la Mairie | 07000 Privas", today=lambda: dt.date(2026, 12, 1))
    message = _rendered_letter(4242)
    [result] = channel.send([message])
    assert result.outcome is Outcome.SENT
    reader = PdfReader(io.BytesIO((channel.last_batch_dir / "merged.pdf").read_bytes()))
    last = reader.pages[-1]
    assert len(last.images) == 1  # the QR code
    short = links_for(SECRET, "https://declic.example.fr", 4242, now=dt.datetime.now(dt.UTC))["short"]
    assert short.split("://", 1)[1] in last.extract_text()
    assert "Flashez ce code" in last.extract_text()
