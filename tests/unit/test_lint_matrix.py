"""Issue 13, point 11: the linter renders templates over a matrix of real contexts (trade nouns, commune names,
ambassador and offer blocks, real link lengths) and lints the landing and diagnostic pages."""

from __future__ import annotations

import datetime as dt

from orchestrator.cli.page_lint import lint_web_pages
from orchestrator.core.links import links_for
from segments.taxonomy import trade_wording
from templates.lint import lint_pages, lint_paths, page_text
from templates.preview import FAMILIES, matrix_contexts, matrix_links


def test_matrix_covers_the_extremes_of_every_family():
    for family in FAMILIES:
        contexts = [c for _, c in matrix_contexts(family, "creation")]
        nouns = {len(trade_wording(c["business"]["naf"]).business) for c in contexts}
        communes = {c["business"]["commune"] for c in contexts}
        assert len(nouns) == 2 and len(communes) == 2, family
        assert {c["ambassador"]["role"] for c in contexts} == {"pair", "conseiller"}
        assert {len(c["offers"]) for c in contexts} == {0, 2}
        assert any(o.get("grant") for c in contexts for o in c["offers"])
    # Links as long as the signed ones that leave (make_token), not a 33-character sample.
    real = links_for("x" * 32, "https://declic.ille-et-vilaine.fr", 12_345_678, now=dt.datetime.now(dt.UTC))
    assert {k: len(v) for k, v in matrix_links().items()} == {k: len(v) for k, v in real.items()}
    assert len(matrix_links()["landing"]) > 60  # a signed link with its host, never a 33-character sample


def test_an_sms_that_fits_only_with_a_short_sample_link_fails(tmp_path):
    draft = tmp_path / "relance.sms.j2"
    draft.write_text("{% block body %}{{ sender.name }} : " + "un mot " * 30
                     + "{{ links.landing }} STOP au 36111{% endblock %}\n",
                     encoding="utf-8")
    report = lint_paths([draft])
    assert any(f.code == "SMS_SEGMENTS" for f in report.errors), report.format()


def test_landing_and_diagnostic_pages_are_rendered_and_read():
    assert "Bonjour" in page_text("<html><head><style>p{}</style></head><body><h1>Bonjour</h1><p>a</p></body>")
    report = lint_web_pages()
    assert report.texts == 40  # 4 contexts: 5 landing states, 5 diagnostic pages (questions, error, 3 results)
    assert not [f for f in report.findings if f.code == "RENDER"], report.format()
    assert any(k.startswith("landing.html") for k in report.scores)
    assert any(k.startswith("diagnostic.html") for k in report.scores)


def test_page_findings_name_the_page_file_and_the_contexts(tmp_path):
    # The pure half of page linting: HTML from any renderer, one finding per problem with the contexts it shows in.
    def render(page: str, context: dict) -> str:
        if context.get("broken"):
            raise KeyError("offers")
        return f"<html><body><h1>Bonjour</h1><p>Votre {context['word']} est prêt.</p></body></html>"

    contexts = [("landing.html", "a", {"word": "CRM"}), ("landing.html", "b", {"word": "CRM"}),
                ("landing.html", "c", {"word": "fichier"}), ("landing.html", "d", {"broken": True})]
    report = lint_pages(contexts, render, tmp_path)
    assert report.texts == 3 and set(report.scores) == {"landing.html [a]", "landing.html [b]", "landing.html [c]"}
    jargon = [f for f in report.findings if f.code == "JARGON"]
    assert len(jargon) == 1 and jargon[0].path == str(tmp_path / "landing.html")
    assert jargon[0].message.endswith("[a; b]")
    assert [f.message for f in report.errors if f.code == "RENDER"] == ["KeyError: 'offers' [d]"]
