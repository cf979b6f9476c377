"""Sender identity (issue 13, point 4): an e-mail's From, Reply-To come from its campaign's sender and owner, with
the configured sending domain, never the global default; on SQLite and PostgreSQL against a real SMTP server. The
dispatcher reads each campaign's voice from the store (`campaign_voices`) and puts it on the messages."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from pydantic import ValidationError

from integrations.base import OutgoingMessage
from integrations.email_smtp import SmtpChannel, build_email, identity, slug
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.outcomes import Outcome
from store.admin import apply_campaign
from store.dispatching import campaign_voices
from tests.integration.test_channel_email_smtp import ScriptedServer
from tests.utils.outreach import campaign_spec

DEFAULT = "Déclic <bonjour@declic.example>"


def _spec(name: str, **sender: str):
    spec = campaign_spec(name, owner={"name": "Département d'Ille-et-Vilaine", "territory": {"departements": ["35"]}})
    spec["sender"] = {"name": "Service économie, Département d'Ille-et-Vilaine", "address": "1 av. Préfecture, Rennes",
                      "email": "entreprendre@ille-et-vilaine.example", **sender}
    return spec


def _mail(message_id: int, campaign_id: int | None, voices: dict | None = None) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id, channel="email", recipient=f"patron{message_id}@exemple.fr",
                           subject="Bonjour", body="Bonjour.\n", rfc_message_id=f"<declic.{message_id}@test>",
                           meta={"campaign_id": campaign_id}, campaign=(voices or {}).get(campaign_id, {}))


def _header(raw: bytes, name: str) -> str:
    value = message_from_bytes(raw)[name]
    return str(make_header(decode_header(value))) if value else ""


def test_each_campaign_speaks_with_its_own_name_address_and_reply_to(engine):
    own = apply_campaign(engine, load_spec(_spec("adresse-propre", mail_from="dev-eco@ille-et-vilaine.example",
                                                 reply_to="conseil@ille-et-vilaine.example")),
                         now=dt.datetime.now(dt.UTC))[0]
    domain = apply_campaign(engine, load_spec(_spec("domaine-envoi")), now=dt.datetime.now(dt.UTC))[0]
    with engine.connect() as conn:
        voices = campaign_voices(conn, [own, domain])
    with ScriptedServer() as server:
        channel = SmtpChannel("127.0.0.1", server.port, sender=DEFAULT, timeout=5, mail_domain="envoi.declic.fr")
        try:
            results = channel.send([_mail(1, own, voices), _mail(2, domain, voices), _mail(3, None, voices)])
        finally:
            channel.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    by_to = {message_from_bytes(raw)["To"]: raw for raw in server.accepted}
    first, second, third = by_to["patron1@exemple.fr"], by_to["patron2@exemple.fr"], by_to["patron3@exemple.fr"]
    assert _header(first, "From") == ("Service économie, Département d'Ille-et-Vilaine "
                                      "<dev-eco@ille-et-vilaine.example>")
    assert _header(first, "Reply-To") == "conseil@ille-et-vilaine.example"
    assert _header(second, "From").endswith("<departement-d-ille-et-vilaine@envoi.declic.fr>")
    assert _header(second, "Reply-To") == "entreprendre@ille-et-vilaine.example"
    assert _header(third, "From") == DEFAULT and _header(third, "Reply-To") == ""


def test_without_a_sending_domain_the_default_address_carries_the_campaign_name():
    spec = {"owner": {"name": "Rennes Métropole"}, "sender": {"name": "Rennes Métropole"}}
    assert identity(spec, DEFAULT) == ("Rennes Métropole <bonjour@declic.example>", None)
    assert identity({}, DEFAULT) == (DEFAULT, None)
    assert slug("Ville d'Aubenas — Cœur") == "ville-d-aubenas-coeur"
    raw = build_email(_mail(9, None), "Rennes Métropole <x@y.fr>", "a@b.fr\r\nBcc: evil@x.fr")
    assert b"\r\nBcc:" not in raw  # a header value never carries a line break


def test_a_sender_address_that_is_not_a_mailbox_is_refused():
    for bad in ("pas une adresse", "a@b.fr\nBcc: c@d.fr", "<a@b.fr>"):
        with pytest.raises(ValidationError):
            load_spec(_spec("adresse-fausse", mail_from=bad))
