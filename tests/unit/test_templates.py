"""The template library: every channel x trigger x family renders, names the trade, and says how to say no."""

from __future__ import annotations

import datetime as dt

import jinja2
import pytest

from templates.lint import fold, sms_length
from templates.preview import CHANNELS, FAMILIES, TRIGGERS, preview_text, render_preview, sample_context
from templates.render import MESSAGES_DIR, date_fr, de, library, load_trades, price_fr, sms_safe, trade
from templates.wording import words_for

REQUIRED_FAMILIES = (
    "batiment", "alimentation", "hotellerie_restauration", "beaute_bien_etre", "commerce_detail", "automobile",
    "transport", "services_particuliers", "services_entreprises", "artisanat_production", "agriculture", "sante",
    "autre",
)
ALL = [(c, t, f) for c in CHANNELS for t in TRIGGERS for f in FAMILIES]


def _render(channel: str, trigger: str, family: str, offers: int = 2, **overrides):
    lib = library()
    context = sample_context(family, trigger, offers, **overrides)
    return lib.render(lib.resolve(channel, trigger, family), context), context


def test_the_sample_families_cover_the_taxonomy_keys():
    assert set(REQUIRED_FAMILIES) <= set(FAMILIES)


@pytest.mark.parametrize("channel,trigger,family", ALL)
def test_every_message_renders_names_the_trade_and_the_way_to_say_no(channel, trigger, family):
    for offers in (0, 1, 2):
        rendered, ctx = _render(channel, trigger, family, offers)
        body = rendered.body
        words = words_for(ctx["business"], load_trades())
        named = [words["business"], words["business_a"]]
        if channel == "sms":  # an SMS names it in one of its GSM-7 forms, the longest that fits 2 segments
            named = [sms_safe(n) for pair in words["sms_nouns"] for n in pair]
            sender = sms_safe(ctx["sender"]["name"])
        else:
            sender = ctx["sender"]["name"]
        named += [n[0].upper() + n[1:] for n in named]  # a sentence may start with it
        assert any(n in body for n in named), "the message names the owner's business"
        assert sender in body, "the sender is identified"
        assert ctx["ambassador"]["name"] in body and ctx["ambassador"]["phone"] in body
        if channel in ("email", "letter"):
            assert rendered.subject.strip()
            # a letter gives the short link to type (its page has the unsubscribe button), never a long one
            assert ctx["links"]["unsubscribe" if channel == "email" else "short"] in body
        if channel == "sms":
            assert "STOP" in body
            assert not rendered.subject
        if channel == "call":
            assert "refus" in body
        assert "None" not in body and "Undefined" not in body


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_zero_one_or_two_offers(channel, trigger):
    none, ctx = _render(channel, trigger, "batiment", 0)
    one, _ = _render(channel, trigger, "batiment", 1)
    two, _ = _render(channel, trigger, "batiment", 2)
    first, second = (o["title"] for o in sample_context(offers=2)["offers"])
    if channel == "sms":
        # an SMS gives the first offer's kind, duration and price; the details are behind the link
        assert "Atelier 2 h, gratuit" not in none.body
        assert "Atelier 2 h, gratuit" in one.body and "Atelier 2 h, gratuit" in two.body
        return
    assert first not in none.body and second not in none.body
    assert first in one.body and second not in one.body
    assert first in two.body and second in two.body
    assert "gratuit" in two.body and "30 €" in two.body  # the price is always said


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_sms_fits_two_gsm7_segments_with_typical_names(trigger, family):
    rendered, _ = _render("sms", trigger, family)
    length = sms_length(rendered.body)
    assert length.encoding == "GSM-7", length.ucs2_chars
    assert length.segments <= 2, (length.units, rendered.body)


def test_sms_never_strips_accents_only_typography():
    # Issue 13: "Vous etes" reads as careless. Letters stay as written (the linter flags those outside GSM-7);
    # only typography with an exact GSM-7 equivalent is replaced.
    ctx = sample_context("agriculture", "creation")
    ctx["ambassador"]["name"] = "Hélène Lefèvre"
    ctx["sender"]["name"] = "Privas Centre\u00a0Ardèche – l’équipe"
    body = library().render("sms/creation/default.j2", ctx).body
    assert "Hélène Lefèvre" in body and "Privas Centre Ardèche - l'équipe" in body
    # a name with a letter outside GSM-7 is never stripped ("Francois"): the SMS leaves it out and stays GSM-7,
    # the number is still given and the landing page names the person
    ctx["ambassador"]["name"] = "François Lefèvre"
    body = library().render("sms/creation/default.j2", ctx).body
    assert "Fran" not in body and ctx["ambassador"]["phone"] in body
    assert sms_length(body.strip()).encoding == "GSM-7"


def test_a_missing_variable_is_an_error_not_a_hole():
    ctx = sample_context()
    del ctx["ambassador"]
    with pytest.raises(jinja2.UndefinedError):
        library().render("email/creation/default.j2", ctx)
    ctx = sample_context()
    del ctx["links"]["unsubscribe"]
    with pytest.raises(jinja2.UndefinedError):
        library().render("email/deadline/default.j2", ctx)


@pytest.mark.parametrize("channel", CHANNELS)
def test_optional_values_may_be_none(channel):
    rendered, _ = _render(
        channel, "deadline", "sante", deadline=None,
        ambassador={"name": "Accueil CCI", "metier": None, "phone": None, "email": "accueil@example.fr",
                    "commune": None},
        sender={"name": "CCI Ardèche", "address": None, "email": None, "phone": None},
        offers=[{"title": "Atelier factures", "provider": None, "kind": None, "format": None,
                 "duration": "1 h", "hours": None, "price": None}],
    )
    assert "None" not in rendered.body
    assert "accueil@example.fr" in rendered.body
    if channel != "sms":
        assert "Atelier factures" in rendered.body


def test_demo_family_files_exist_and_override_the_gain():
    lib = library()
    for family in ("batiment", "alimentation", "hotellerie_restauration"):
        assert lib.resolve("email", "creation", family) == f"email/creation/{family}.j2"
    assert lib.resolve("email", "creation", "sante") == "email/creation/default.j2"
    building, _ = _render("email", "creation", "batiment")
    assert "Le client signe sur l'écran." in building.body
    assert "faire vos devis sur votre téléphone, sur le chantier" in building.body
    # the overridden block sits inside the inherited layout
    assert building.body.startswith("Bonjour,") and "Pour ne plus recevoir" in building.body


def test_every_family_gets_its_own_gain():
    gains = {_render("email", "creation", f)[0].body.split("Un exemple pour votre métier : ")[1].split(".")[0]
             for f in FAMILIES}
    assert len(gains) == len(FAMILIES)
    assert trade("inconnue") == trade("autre")


def test_email_html_is_escaped_and_links_are_clickable():
    rendered, ctx = _render("email", "creation", "batiment")
    assert rendered.html and "<p " in rendered.html  # every tag carries its inline style
    assert f'<a href="{ctx["links"]["unsubscribe"]}" ' in rendered.html
    assert "d&#x27;" in rendered.html or "l&#x27;" in rendered.html


def test_deadline_says_what_changes_and_when():
    rendered, _ = _render("email", "deadline", "batiment")
    assert "1er septembre 2026" in rendered.body and "1er septembre 2027" in rendered.body
    assert "vos factures de travaux" in rendered.body
    assert "payant" in rendered.body  # recurring cost named honestly
    assert "15 €" in rendered.body


def test_every_leaf_template_is_known():
    leaves = {p.relative_to(MESSAGES_DIR).as_posix() for p in MESSAGES_DIR.rglob("*.j2")
              if p.name != "base.j2" and not any(part.startswith("_") for part in p.relative_to(MESSAGES_DIR).parts)}
    defaults = {f"{c}/{t}/default.j2" for c in CHANNELS for t in TRIGGERS}
    assert defaults <= leaves


def test_preview_text_shows_subject_and_body():
    text = preview_text(library(), "email/creation/batiment.j2", sample_context())
    assert text.startswith("== email/creation/batiment.j2")
    assert "Objet : Votre entreprise de travaux démarre" in text
    assert "Bonjour," in text
    assert render_preview("sms/deadline/default.j2").body.count("STOP") == 1


def test_filters():
    assert date_fr(dt.date(2027, 9, 1)) == "1er septembre 2027"
    assert date_fr("2026-08-15") == "15 août 2026"
    assert price_fr(0) == "gratuit" and price_fr(None) == "à demander"  # unknown is never "free"
    assert price_fr(30) == "30 €" and price_fr(12.5) == "12,5 €" and price_fr("sur devis") == "sur devis"
    assert de("ébéniste") == "d'ébéniste" and de("plombier") == "de plombier" and de("horloger") == "d'horloger"
    assert sms_safe("Côte-d’Ivoire ça") == "Côte-d'Ivoire ça"
    assert fold("Élève") == "eleve"
