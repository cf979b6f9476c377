"""The plain-language linter: each rule on small texts, and every shipped template passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from templates.lint import (
    ERROR,
    INFO,
    WARNING,
    kandel_moles,
    lint_paths,
    lint_text,
    load_lexicon,
    main,
    sentences,
    shipped_templates,
    sms_length,
    syllables,
)

SIGNED = "\nCCI Ardèche, au nom de la commune."


def codes(findings, severity=None):
    return [f.code for f in findings if severity is None or f.severity == severity]


# --- jargon ---------------------------------------------------------------------------------------------------

def test_jargon_is_reported_on_its_line_with_the_plain_replacement():
    findings = lint_text("Bonjour.\nNotre CRM vous aide.\nÀ bientôt." + SIGNED)
    jargon = [f for f in findings if f.code == "JARGON"]
    assert len(jargon) == 1
    assert jargon[0].line == 2 and jargon[0].severity == ERROR
    assert "CRM" in jargon[0].message and "fichier clients" in jargon[0].message


@pytest.mark.parametrize("text,term", [
    ("Il faut DIGITALISER votre boutique.", "DIGITALISER"),
    ("La dematerialisation arrive.", "dematerialisation"),
    ("La Dématérialisation arrive.", "Dématérialisation"),
    ("Vendez en ecommerce.", "ecommerce"),
    ("Vendez en e-commerce.", "e-commerce"),
    ("Testez le Click & Collect.", "Click & Collect"),
    ("Deux plateformes existent.", "plateformes"),
    ("Vos données dans le cloud.", "cloud"),
    ("Faites du marketing digital.", "marketing digital"),
    ("Quel ROI ?", "ROI"),
])
def test_jargon_matches_case_accents_spellings_and_plurals(text, term):
    messages = [f.message for f in lint_text(text) if f.code == "JARGON"]
    assert any(f"« {term} »" in m for m in messages), messages


@pytest.mark.parametrize("text", [
    "Un seau et un sel.",                      # "seo" is not inside other words
    "Voir https://exemple.fr/cloud/seo",       # URLs are not prose
    "Écrivez à crm@exemple.fr",                # nor e-mail addresses
    "La galette des rois.",                    # a case-sensitive acronym (ROI) is not the word "rois"
])
def test_jargon_respects_word_boundaries_and_ignores_links(text):
    assert "JARGON" not in codes(lint_text(text))


def test_the_lexicon_has_at_least_60_terms_each_with_a_replacement():
    lexicon = load_lexicon()
    terms = lexicon.terms
    assert len(terms) >= 60
    assert all(t.replacement.strip() for t in terms)
    names = {t.term.lower() for t in terms}
    for required in ("crm", "click & collect", "seo", "cloud", "marketing digital", "e-commerce", "newsletter",
                     "back-office", "dashboard", "responsive", "plateforme", "saas", "digitaliser"):
        assert required in names
    assert lexicon.hype is not None


def test_hype_is_a_warning():
    findings = lint_text("Une offre révolutionnaire." + SIGNED)
    assert codes(findings, WARNING) == ["HYPE"]


# --- sentences and readability -------------------------------------------------------------------------------

def test_a_25_word_sentence_is_an_error_on_its_first_line():
    long = " ".join(["mot"] * 24) + " fin."
    findings = lint_text("Bonjour.\n" + long + "\nMerci." + SIGNED)
    hits = [f for f in findings if f.code == "LONG_SENTENCE"]
    assert len(hits) == 1 and hits[0].line == 2 and hits[0].severity == ERROR
    assert "25 mots" in hits[0].message


def test_twenty_words_is_fine():
    assert "LONG_SENTENCE" not in codes(lint_text(" ".join(["mot"] * 19) + " fin."))


def test_sentences_split_on_punctuation_and_line_ends_but_not_wrapped_prose():
    text = "Ce qui change :\n- une date.\nUne phrase qui continue\nsur la ligne suivante. Et une autre ! Fin"
    found = [(s.line, s.text) for s in sentences(text)]
    assert found == [(1, "Ce qui change :"), (2, "- une date."),
                     (3, "Une phrase qui continue sur la ligne suivante."), (4, "Et une autre !"), (4, "Fin")]
    assert [s.line for s in sentences("1. Se présenter\n2. Dire bonjour.")] == [1, 2]


@pytest.mark.parametrize("word,expected", [
    ("votre", 1), ("facture", 2), ("arrive", 2), ("demain", 2), ("chaque", 1), ("une", 1), ("le", 1),
    ("rue", 1), ("idée", 2), ("journées", 2), ("créer", 2), ("réel", 2), ("payer", 2), ("envoyer", 3),
    ("naïf", 2), ("électroniques", 4), ("plombier-chauffagiste", 5), ("l'équipe", 2), ("h", 1), ("oiseau", 2),
    ("yeux", 1), ("type", 1), ("quatre", 1), ("guide", 1),
])
def test_french_syllable_counter(word, expected):
    assert syllables(word) == expected


def test_kandel_moles_worked_example():
    # "Votre facture arrive demain." : 4 words, 1 sentence, 1 + 2 + 2 + 2 = 7 syllables
    # 207 - 1.015 x 4/1 - 73.6 x 7/4 = 207 - 4.06 - 128.8 = 74.14
    assert kandel_moles("Votre facture arrive demain.") == pytest.approx(74.14)
    # "Le chat dort. Il fait beau." : 6 words, 2 sentences, 6 syllables -> 207 - 3.045 - 73.6 = 130.355
    assert kandel_moles("Le chat dort. Il fait beau.") == pytest.approx(130.355)


def test_a_hard_text_scores_below_60_and_fails():
    text = "Dématérialisation obligatoire, réglementation administrative, interopérabilité généralisée."
    findings = lint_text(text + SIGNED)
    score = [f for f in findings if f.code == "READABILITY"]
    assert score and score[0].severity == ERROR and "< 60" in score[0].message
    easy = [f for f in lint_text("Le chat dort. Il fait beau." + SIGNED) if f.code == "READABILITY"]
    assert easy[0].severity == INFO


# --- SMS -------------------------------------------------------------------------------------------------------

def test_one_e_circumflex_forces_ucs2_and_is_named():
    findings = lint_text("CCI : une fête au marché. Répondez STOP.", "sms")
    ucs2 = [f for f in findings if f.code == "SMS_UCS2"]
    assert ucs2 and "'ê'" in ucs2[0].message and ucs2[0].line == 1
    assert sms_length("fête").encoding == "UCS-2"
    assert sms_length("été à Noël ? Ça va").encoding == "GSM-7" or "ë" in sms_length("Noël").ucs2_chars
    assert sms_length("Ça, é, è, à, ù, É").encoding == "GSM-7"
    assert set(sms_length("ç ô î û ë ï â").ucs2_chars) == set("çôîûëïâ")


@pytest.mark.parametrize("units,segments", [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_segments(units, segments):
    text = "ê" + "a" * (units - 1)
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == ("UCS-2", units, segments)


@pytest.mark.parametrize("units,segments", [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_segments(units, segments):
    length = sms_length("a" * units)
    assert (length.encoding, length.units, length.segments) == ("GSM-7", units, segments)


def test_gsm7_extension_characters_count_twice():
    assert sms_length("€" * 80).units == 160 and sms_length("€" * 80).segments == 1
    assert sms_length("€" * 81).segments == 2


def test_more_than_two_segments_is_an_error():
    # Issue 13: a 3-segment SMS fails the linter (measured with the real short link and the STOP mention).
    findings = lint_text("CCI Ardèche : " + "bonjour. " * 40 + "STOP", "sms")
    assert "SMS_SEGMENTS" in codes(findings, ERROR)
    assert "SMS_LENGTH" in codes(findings, INFO)


# --- mandatory elements ----------------------------------------------------------------------------------------

def test_sms_without_stop_is_an_error():
    assert "MISSING_STOP" in codes(lint_text("CCI Ardèche : un atelier lundi.", "sms"), ERROR)
    assert "MISSING_STOP" not in codes(lint_text("CCI Ardèche : un atelier lundi. STOP au 36111", "sms"))


def test_email_and_letter_need_an_unsubscribe_link():
    body = "Bonjour.\nUn atelier lundi.\nCordialement, CCI Ardèche"
    for channel in ("email", "letter"):
        assert "MISSING_UNSUBSCRIBE" in codes(lint_text(body, channel), ERROR)
        ok = body + "\nPour ne plus recevoir nos messages : https://d.fr/u/x"
        assert "MISSING_UNSUBSCRIBE" not in codes(lint_text(ok, channel))
    exact = lint_text(body + "\nLien : https://d.fr/u/x", "email", unsubscribe_url="https://d.fr/u/y")
    assert "MISSING_UNSUBSCRIBE" in codes(exact)


def test_sender_must_be_named():
    assert "MISSING_SENDER" in codes(lint_text("Un atelier lundi. STOP", "sms"), ERROR)
    assert "MISSING_SENDER" in codes(lint_text("Un atelier lundi."), WARNING)  # unknown channel: a warning
    named = lint_text("CCI Ardèche : un atelier lundi. STOP", "sms", sender_name="CCI Ardèche")
    assert "MISSING_SENDER" not in codes(named)


def test_call_script_must_say_how_to_record_a_refusal():
    script = "J'appelle de la part de la CCI. Vous avez deux minutes ?"
    assert "MISSING_REFUSAL" in codes(lint_text(script, "call"), ERROR)
    assert "MISSING_REFUSAL" not in codes(lint_text(script + "\nSi refus : notez-le.", "call"))


# --- files, templates and the command ---------------------------------------------------------------------------

def test_plain_text_files_are_linted_with_a_channel_from_their_name(tmp_path: Path):
    sms = tmp_path / "relance.sms.txt"
    sms.write_text("CCI Ardèche : essayez notre CRM.\n", encoding="utf-8")
    report = lint_paths([sms])
    assert {"JARGON", "MISSING_STOP"} <= {f.code for f in report.errors}
    assert all(f.path.endswith("relance.sms.txt") for f in report.findings)
    assert main([str(sms)]) == 1
    clean = tmp_path / "note.txt"
    clean.write_text("Le chat dort. Il fait beau.\nCordialement, la CCI.\n", encoding="utf-8")
    assert main([str(clean)]) == 0


def test_template_findings_point_to_the_source_line(tmp_path: Path):
    folder = tmp_path / "messages" / "email" / "creation"
    folder.mkdir(parents=True)
    (tmp_path / "messages" / "email" / "base.j2").write_text(
        "{% block subject %}Bonjour{% endblock %}\n"
        "{% block body %}\nBonjour {{ business.name }}.\n{% block gain %}{% endblock %}\n"
        "{{ sender.name }}\nNe plus recevoir : {{ links.unsubscribe }}\n{% endblock %}\n", encoding="utf-8")
    (folder / "default.j2").write_text(
        '{% extends "email/base.j2" %}\n{% block gain %}\nUn outil simple.\nEssayez notre CRM en ligne.\n'
        "{% endblock %}\n", encoding="utf-8")
    report = lint_paths([folder / "default.j2"])
    jargon = [f for f in report.findings if f.code == "JARGON"]
    assert jargon and all(f.path.endswith("default.j2") and f.line == 4 for f in jargon)
    assert not [f for f in report.errors if f.code != "JARGON"]
    partial = lint_paths([tmp_path / "messages" / "email" / "base.j2"])
    assert [f.code for f in partial.findings] == ["PARTIAL"]


def test_a_template_that_does_not_render_is_an_error(tmp_path: Path):
    folder = tmp_path / "messages" / "sms" / "creation"
    folder.mkdir(parents=True)
    (folder / "default.j2").write_text("{% block body %}{{ nope.missing }} STOP{% endblock %}\n", encoding="utf-8")
    report = lint_paths([folder / "default.j2"])
    assert "RENDER" in {f.code for f in report.errors}


def test_every_shipped_template_passes_the_linter_with_no_error():
    templates = shipped_templates()
    assert len(templates) >= 24
    report = lint_paths(templates)
    assert report.errors == [], "\n".join(str(f) for f in report.errors)
    low = report.lowest_score()
    assert low is not None and low[1] >= 60


def test_the_longest_term_wins_and_is_reported_once():
    hits = [f for f in lint_text("Du marketing digital.") if f.code == "JARGON"]
    assert len(hits) == 1 and "« marketing digital »" in hits[0].message


def test_a_loose_template_is_rendered_from_its_own_folder(tmp_path: Path):
    draft = tmp_path / "relance.sms.j2"
    draft.write_text("{% block body %}{{ sender.name }} : bonjour {{ business.metier }}, "
                     "testez le SEO.{% endblock %}\n", encoding="utf-8")
    report = lint_paths([draft])
    assert {"JARGON", "MISSING_STOP"} <= {f.code for f in report.errors}
    assert "RENDER" not in {f.code for f in report.findings}
