"""The self-diagnostic's levels and next step (issue 16, point 5): pure functions of the answers' stable codes."""

from __future__ import annotations

import pytest

from orchestrator.core.diagnostic import (
    TRADE_QUESTIONS,
    appetite_score,
    is_free,
    levels,
    maturity_score,
    next_step,
    parse_answers,
    price_words,
    questions,
    stored_levels,
)
from segments.taxonomy import families
from web.diagnostic import person_of

PERSON = {"name": "Claire Le Goff", "phone": "02 99 02 35 36"}
FREE = {"title": "Atelier devis sur téléphone", "kind": "formation_courte", "price": "gratuit"}
PAID = {"title": "Logiciel de devis : prise en main", "kind": "accompagnement", "price": "120 €"}
WEB = {"title": "Être trouvé sur internet", "kind": "formation_courte", "price": 20}
CHECK = {"title": "Diagnostic numérique", "kind": "diagnostic", "price": "gratuit"}


def answers(**kw):
    base = {"phone": [], "invoices": "nobody", "time": "one_hour", "chores": [], "trade": "by_hand"}
    return base | kw


def test_every_trade_family_has_its_own_question_with_three_answers():
    assert set(TRADE_QUESTIONS) == set(families())
    assert questions("batiment")[-1].legend == "Vos devis, vous les faites…"
    assert questions("inconnue")[-1].legend == TRADE_QUESTIONS["autre"][0]
    assert [c.code for c in questions("sante")[-1].choices] == ["by_hand", "partly", "tool"]


@pytest.mark.parametrize(("given", "score", "level"), [
    (answers(), 0, "first_steps"),
    (answers(phone=["email"], invoices="accountant"), 1, "first_steps"),
    (answers(phone=["email", "photos"], invoices="accountant", trade="partly"), 3, "on_the_way"),
    (answers(phone=["email", "photos"], invoices="software", trade="partly"), 4, "well_equipped"),
    (answers(phone=["email", "photos", "bank"], invoices="software", trade="tool"), 5, "well_equipped"),
])
def test_maturity_is_zero_to_five_like_the_first_diagnostic(given, score, level):
    assert maturity_score(given) == score
    assert (levels(given).score, levels(given).maturity) == (score, level)


@pytest.mark.parametrize(("time", "chores", "score", "level"), [
    ("none", [], 0, "low"),
    ("one_hour", [], 1, "low"),
    ("none", ["payment", "booking", "management"], 2, "medium"),
    ("one_hour", ["payment"], 2, "medium"),
    ("hours", ["payment"], 3, "high"),
    ("hours", ["payment", "booking", "management"], 4, "high"),
])
def test_appetite_comes_from_time_and_the_chores_to_stop(time, chores, score, level):
    given = answers(time=time, chores=chores)
    assert appetite_score(given) == score and levels(given).appetite == level


def test_parse_keeps_stable_codes_and_names_what_is_missing_or_unknown():
    form = {"phone": ["photos", "email"], "invoices": ["accountant"], "time": ["hours"], "chores": [],
            "trade": ["tool"]}
    got, missing = parse_answers(form, "batiment")
    assert missing == [] and got == {"phone": ["email", "photos"], "invoices": "accountant", "time": "hours",
                                     "chores": [], "trade": "tool"}
    assert parse_answers(dict(form, time=["toujours"], phone=["fax"]), "batiment") == (None, ["phone", "time"])
    assert parse_answers({"invoices": ["accountant", "software"]}, None)[1] == ["invoices", "time", "trade"]


def test_both_stored_versions_have_a_level():
    v2 = {"version": 2, "answers": answers(phone=["email", "photos"], invoices="software", time="hours",
                                           chores=["payment"]), "score": 3}
    lv = stored_levels(v2)
    assert (lv.version, lv.score, lv.maturity, lv.appetite) == (2, 3, "on_the_way", "high")
    v1 = {"score": 1, "answers": {"email_pro": True}, "offer": None, "source": "landing"}
    assert (stored_levels(v1).version, stored_levels(v1).maturity, stored_levels(v1).appetite) == \
        (1, "first_steps", None)
    assert stored_levels({"source": "partenaire"}) is None and stored_levels(None) is None
    assert stored_levels({"score": True}) is None and stored_levels({"score": 9}) is None


def test_prices_in_words():
    assert [is_free(p) for p in ("gratuit", "Gratuit pour les adhérents", 0, "0 €", None, "20 €", 20)] == \
        [True, True, True, True, False, False, False]
    assert price_words({"price": 20}) == "20 €" and price_words({"price": 0}) == "gratuit"
    assert price_words({"price": None, "grant": "La Région paie la moitié."}) == "La Région paie la moitié."


def test_the_step_fits_the_most_pressing_need_and_is_free_when_time_is_short():
    # Nobody receives the invoices and no offer speaks of them: the quotes come next, and a free offer first.
    step = next_step(answers(chores=["quotes_invoices"], time="hours"), [PAID, FREE, WEB], PERSON, "batiment")
    assert (step.title, step.price, step.person["name"], step.kind) == (FREE["title"], "gratuit", "Claire Le Goff",
                                                                         "offer")
    # Time is short: the paid offer is never the step, even when it alone fits.
    step = next_step(answers(chores=["online_visibility"], time="none"), [WEB, PAID], PERSON, "batiment")
    assert step.kind == "call" and step.price == "gratuit" and step.person["name"] == "Claire Le Goff"
    # Time there: the paid offer that fits.
    step = next_step(answers(chores=["online_visibility"], time="hours"), [FREE, WEB], PERSON, "batiment")
    assert (step.title, step.price) == (WEB["title"], "20 €")


def test_a_beginner_without_a_fitting_offer_gets_a_check_up_and_otherwise_a_call():
    step = next_step(answers(trade="partly"), [WEB, CHECK], PERSON, "sante")
    assert step.title == "Diagnostic numérique"
    step = next_step(answers(phone=["email", "photos"], invoices="software", trade="tool"), [CHECK], PERSON)
    assert step.kind == "call" and step.title == "Un appel de 15 minutes avec votre contact"


def test_the_person_is_the_matched_ambassador_else_the_sender():
    assert person_of({"ambassador": {"name": "Claire Le Goff", "phone": "0299"}})["name"] == "Claire Le Goff"
    assert person_of({"ambassador": {}, "sender": {"name": "Département", "phone": "0299"}})["name"] == "Département"


@pytest.mark.parametrize("channel", ["letter", "call"])
def test_letters_and_call_scripts_give_the_short_diagnostic_link_in_one_sentence(channel):
    from templates.preview import TRIGGERS, sample_context
    from templates.render import library

    lib = library()
    for trigger in TRIGGERS:
        ctx = sample_context("batiment", trigger, 2)
        body = lib.render(lib.resolve(channel, trigger, "batiment"), ctx).body
        assert body.count(ctx["links"]["short"] + "/diagnostic") == 1, trigger
        line = next(x for x in body.splitlines() if "/diagnostic" in x)
        assert "cinq questions" in line
