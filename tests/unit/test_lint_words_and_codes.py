"""The linter (issue 13, point 11): the new jargon, raw program codes and INSEE labels are errors."""

from __future__ import annotations

from templates.lint import lint_text


def _codes(text: str) -> list[str]:
    return [f.code for f in lint_text(text, None) if f.severity == "error"]


def test_new_lexicon_words_are_jargon():
    for text in ("La transition numérique arrive.", "Pensez à la numérisation.", "Numérisez vos factures.",
                 "Des outils collaboratifs simples.", "Un rendez-vous en visio.", "Une appli gratuite.",
                 "Pour votre TPE.", "Digitaliser votre atelier."):
        assert "JARGON" in _codes(text), text
    assert "JARGON" not in _codes("Les tpe sont nombreuses.")  # the acronym only, as written


def test_raw_codes_and_insee_labels_are_errors_but_not_addresses():
    assert _codes("Atelier 1 h 30, a_distance.").count("RAW_CODE") == 1
    assert "RAW_CODE" in _codes("Formation_courte gratuite.")
    assert "INSEE_LABEL" in _codes("Vous êtes autres activités de soutien aux entreprises n.c.a. depuis peu.")
    assert "INSEE_LABEL" in _codes("Votre entreprise d'activités des sociétés holding.")
    assert not {"RAW_CODE", "INSEE_LABEL"} & set(_codes("Écrivez à jean_paul@ex.fr ou sur https://x.fr/a_b."))
