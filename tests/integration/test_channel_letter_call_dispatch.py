"""Letters and call tasks through the real dispatcher: rendered from the shipped templates, then written."""

from __future__ import annotations

import csv
import datetime as dt

from pypdf import PdfReader
from sqlalchemy import select

from integrations.base import factory_for, registered
from integrations.call_task import CallTaskChannel
from integrations.letter_pdf import LetterChannel
from orchestrator.app.bootstrap import _import_channels, bootstrap
from orchestrator.app.dispatch import dispatch_batch
from store.call_tasks import TASKS
from store.models import Business, Message
from tests.utils.outreach import business, campaign, context, enrol

MESSAGES = Message.__table__
BUSINESSES = Business.__table__
# Tuesday 1 December 2026, 09:30 UTC (10:30 in Paris).
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def planned(
    engine, channel: str, recipient: str, *, name: str, phone: str | None = None, consent: bool = False
) -> tuple[int, int]:
    campaign_id = campaign(engine, f"{channel}-35", "35")
    with engine.begin() as conn:
        business_id = business(conn, "35238", name=name)
        conn.execute(
            BUSINESSES.update()
            .where(BUSINESSES.c.id == business_id)
            .values(phone=phone, phone_consent=consent)
        )
        ctx = context(name=name)
        # As the planner writes it from the campaign's `Sender` (every field present).
        ctx["sender"] = {
            "name": "Département d'Ille-et-Vilaine",
            "address": "1 avenue de la Préfecture, 35042 Rennes",
            "email": "declic@ille-et-vilaine.example",
            "phone": "02 99 02 35 35",
        }
        _, message_id = enrol(
            conn, campaign_id, business_id, status="planned", channel=channel, at=NOW, ctx=ctx
        )
        conn.execute(MESSAGES.update().where(MESSAGES.c.id == message_id).values(recipient=recipient))
    return message_id, business_id


def test_a_letter_is_rendered_and_written_for_the_mailing_house(settings, engine) -> None:
    message_id, _ = planned(
        engine, "letter", "Plomberie Durand\n12, rue de l'Église\n35000 Rennes", name="Plomberie Durand"
    )
    app = bootstrap(settings, clock=lambda: NOW)
    app.channels["letter"] = LetterChannel.from_settings(settings, clock=app.clock)
    try:
        counts = dispatch_batch(app, now=NOW)
    finally:
        app.close()
    with engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
    assert counts["sent"] == 1, (counts, row.last_error)
    assert row.status == "sent"
    pdf = settings.home / "letters" / row.provider_id
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "12 RUE DE L EGLISE" in text and "35000 RENNES" in text
    assert "votre entreprise de travaux" in text  # the shipped letter template names the trade (family wording)
    with open(pdf.parents[1] / "manifest.csv", encoding="utf-8-sig", newline="") as handle:
        [manifest] = list(csv.DictReader(handle, delimiter=";"))
    assert manifest["message_id"] == str(message_id) and manifest["line1"] == "Plomberie Durand"
    assert "1er décembre 2026" in text  # dated by the composition root's clock
    # The sender block (top left) is the campaign's sender, which the dispatcher reads from the store and puts on
    # the message (`OutgoingMessage.campaign`): the message's meta does not carry it.
    page = PdfReader(pdf).pages[0]
    top_left: list[str] = []

    def visit(text, cm, tm, font, size):  # text runs above the envelope window, left half
        if text.strip() and tm[5] > float(page.mediabox.height) - 50 * 72 / 25.4 and tm[4] < 100 * 72 / 25.4:
            top_left.append(text.strip())

    page.extract_text(visitor_text=visit)
    assert top_left[:3] == ["Département d'Ille-et-Vilaine", "1 avenue de la Préfecture", "35042 Rennes"]


def test_a_call_task_is_queued_with_the_rendered_script(settings, engine) -> None:
    message_id, business_id = planned(
        engine, "call", "+33612345678", name="Plomberie Durand", phone="+33612345678", consent=True
    )
    app = bootstrap(settings, clock=lambda: NOW)
    # The composition root's clock reaches the channel (bootstrap passes only the settings so far).
    app.channels["call"] = CallTaskChannel.from_settings(settings, clock=app.clock)
    try:
        assert dispatch_batch(app, now=NOW)["sent"] == 1
    finally:
        app.close()
    with engine.connect() as conn:
        task = conn.execute(select(TASKS)).one()
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
    assert (task.message_id, task.business_id, task.phone, task.status) == (
        message_id,
        business_id,
        "+33612345678",
        "open",
    )
    assert row.status == "sent" and row.provider_id == str(task.id)
    assert "plomb" in task.script.lower()
    assert task.due_at == NOW  # Tuesday 10:30 in Paris: callable at once


def test_every_channel_factory_accepts_the_root_clock(settings) -> None:
    _import_channels()
    for name in ("email", "sms", "letter", "call", "webhook"):
        assert name in registered()
        channel = factory_for(name)(settings, clock=lambda: NOW)
        channel.close()
