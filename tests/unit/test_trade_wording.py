"""Every NAF sub-class is named the owner's way in the messages: never an INSEE label, never a gendered form.

For each of the 732 sub-classes, the creation e-mail and SMS are rendered for a business of that code, with the
INSEE label as its old `metier` (so any template still gluing the label in would show it).
"""

from __future__ import annotations

import re

import pytest

from segments.taxonomy import naf_entries, trade_wording
from templates.lint import sms_length
from templates.preview import sample_context
from templates.render import library, load_trades
from templates.wording import words_for

_INSEE = re.compile(r"\b(Autres|autres activités|Activités|n\.c\.a|sièges sociaux|classées? ailleurs|"
                    r"interentreprises)\b|\(e\)|êtes pas seul|\bprêt\b")


def _messages(code: str, channels=("email", "sms"), trigger: str = "creation") -> list[str]:
    entry = naf_entries()[code]
    lib = library()
    texts = []
    for channel in channels:
        context = sample_context(entry.family, trigger)
        context["business"] = dict(context["business"], naf=code, metier=entry.label)
        rendered = lib.render(lib.resolve(channel, trigger, entry.family), context)
        texts.append(f"{rendered.subject}\n{rendered.body}")
    return texts


@pytest.mark.parametrize("code", sorted(naf_entries()))
def test_no_insee_label_in_the_creation_email_and_sms(code):
    label = naf_entries()[code].label
    wording = trade_wording(code)
    own_words = f"{wording.business} {wording.trade}".lower()
    email, sms = _messages(code)
    for text in (email, sms):
        found = _INSEE.search(text)
        assert found is None, (code, found.group(0), text)
        if label.lower() not in own_words:
            assert label.lower() not in text.lower(), (code, label)
    assert wording.business in email.lower(), (code, wording.business)
    # the SMS names it in GSM-7 (a reviewed SMS form around ê, â, î ...; the family's or the generic noun when the
    # whole text would not fit 2 segments), never with an accent stripped
    sms_nouns = words_for({"naf": code, "family": naf_entries()[code].family}, load_trades())["sms_nouns"]
    assert any(noun in sms.lower() for noun, _ in sms_nouns), (code, sms_nouns, sms)
    length = sms_length(sms.strip())
    assert length.encoding == "GSM-7" and length.segments <= 2, (code, length, sms)


@pytest.mark.parametrize("trigger", ["consolidation", "critical_period", "deadline", "first_hire", "takeover"])
@pytest.mark.parametrize("code", ["10.71C", "43.22A", "96.02A", "49.32Z", "70.10Z", "82.99Z", "64.20Z"])
def test_every_trigger_and_channel_names_the_business(code, trigger):
    wording = trade_wording(code)
    for channel in ("email", "sms", "letter", "call"):
        [text] = _messages(code, (channel,), trigger)
        assert _INSEE.search(text) is None, (code, trigger, text)
        if channel != "sms":  # an SMS may leave the business out to fit two segments; never a label
            assert wording.business in text.lower() or wording.business_a in text.lower(), (code, trigger)


def test_unknown_code_falls_back_to_the_family_then_to_generic_words():
    trades = load_trades()
    assert words_for({"naf": "10.71C", "family": "alimentation"}, trades)["business"] == "votre boulangerie"
    assert words_for({"naf": "99.99Z", "family": "sante"}, trades)["business"] == "votre cabinet"
    assert words_for({"family": "inconnue"}, trades)["business"] == "votre entreprise"
    assert words_for(None, trades)["trade"] == "les petites entreprises"
