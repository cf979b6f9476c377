"""Where the data came from (GDPR art. 14, issue 13 point 3): every channel says why the business gets the message
and from which source (Sirene/INSEE, BODACC, the partner's name), with how to object; the SMS in its short form."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.core.planner import BusinessView, Candidate, message_context
from templates.lint import sms_length
from templates.preview import sample_context
from templates.render import library
from templates.wording import origin_words
from tests.utils.factories import campaign_spec

SIRENE = {"event": "sirene", "email": None, "phone": None, "address": "sirene"}
PARTNER = {"event": "BGE 35", "email": "BGE 35", "phone": "BGE 35", "address": "BGE 35"}


def _render(channel: str, origin: dict, trigger: str = "creation", code: str = "10.71C") -> str:
    context = sample_context("alimentation", trigger, 1, origin=origin)
    context["business"] = dict(context["business"], naf=code)
    lib = library()
    return lib.render(lib.resolve(channel, trigger, "alimentation"), context).body


@pytest.mark.parametrize("channel", ["email", "letter", "call", "sms"])
def test_each_channel_names_the_source_of_a_sirene_business_and_of_a_partner_business(channel):
    sirene, partner = _render(channel, SIRENE), _render(channel, PARTNER)
    if channel == "sms":
        assert "Source : Sirene (INSEE)." in sirene and "BGE" not in sirene
        assert "Source : BGE 35." in partner and "Sirene" not in partner
        for body in (sirene, partner):
            length = sms_length(body.strip())
            assert length.encoding == "GSM-7" and length.segments <= 2 and "STOP" in body
        return
    assert "répertoire Sirene de l'INSEE" in sirene and "BGE 35" not in sirene
    assert "BGE 35" in partner and "Sirene" not in partner
    for body in (sirene, partner):
        assert "qui viennent d'être créées" in body  # why this business
    if channel == "email":
        assert "Vous pouvez vous y opposer" in sirene and "Pour ne plus recevoir nos messages" in sirene
    if channel == "letter":
        assert "Vous ne voulez plus recevoir nos courriers" in sirene
    if channel == "call":
        assert "Vous pouvez refuser nos appels" in sirene


def test_the_contact_source_of_the_channel_is_said_with_the_event_source():
    origin = {"event": "bodacc", "email": "Adie", "phone": "landing", "address": "sirene"}
    assert "le BODACC" in _render("email", origin, "takeover") and "Adie" in _render("email", origin, "takeover")
    letter = _render("letter", origin, "takeover")
    assert "le BODACC" in letter and "Adie" not in letter  # the letter's address is Sirene's: not the e-mail's
    assert "Source : BODACC et vous-même." in _render("sms", origin, "takeover")


def test_sources_in_words_never_show_a_code_and_an_sms_never_goes_ucs2_for_a_partner_name():
    words = origin_words({"event": "partner:12", "phone": "Chambre de métiers de la Côte-d'Or"})
    assert words["email"] == [{"long": "un partenaire de la campagne", "short": "un partenaire"}]
    assert words["sms"][1] == {"long": "Chambre de métiers de la Côte-d'Or", "short": "un partenaire"}
    assert origin_words({"event": "calendar", "address": "sirene"})["letter"][0]["short"] == "Sirene (INSEE)"


def test_the_planner_puts_the_stored_sources_in_the_message_context():
    from orchestrator.core.campaign_spec import CampaignSpec

    spec = CampaignSpec.model_validate(campaign_spec())
    b = BusinessView(1, "85312345600017", "Boulangerie", "boulanger", "alimentation", "Alimentation", "35238",
                     "Rennes", None, "35", "53", "35000", "active", False, "a@b.fr", "0611223344", None,
                     naf_code="10.71C", email_source="BGE 35", phone_source="landing", address_source="sirene")
    context = message_context(spec, b, Candidate(7, "creation", dt.date(2026, 10, 1), b, source="sirene"))
    assert context["origin"] == {"event": "sirene", "email": "BGE 35", "phone": "landing", "address": "sirene"}
