"""The campaign editor in headless Chromium (issue 19, points 4 and 8): a collectivité user creates a campaign on
"Rennes Métropole" for the building trades with a reminder if no click, previews it and saves it, meeting no
English word, no code and no traceback on the way; axe-core finds no violation on the form page; the strict CSP
reports nothing (no inline script or style). Reuses the dashboard's browser fixtures and the vendored axe-core."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from store.models import Campaign
from tests.e2e.test_browser_dashboard import browser, page, sign_in, world  # noqa: F401 (fixtures)

AXE = Path(__file__).parents[1] / "utils" / "axe.min.js"
AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.map(v => v.id + ': ' + v.help + ' -> ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""
pytestmark = pytest.mark.slow
# What a French reader must never meet: snake_case codes, English words of the spec or of an error, a traceback.
FORBIDDEN = re.compile(r"\b[a-z]+_[a-z_]+\b|\b(?:email|no_click|fallback|trigger|template|step|channel|delay|"
                       r"holdout|Traceback|Error|None|null|required|invalid|Field)\b")


def visible_text(pg) -> str:
    return pg.locator("main").inner_text()


def assert_french(pg) -> None:
    text = visible_text(pg)
    found = sorted(set(FORBIDDEN.findall(text)))
    assert not found, f"not French or a code: {found}"
    assert "243500139" not in text  # no SIREN number


def test_create_preview_save_a_campaign_on_rennes_metropole(page, live_server, world, engine):  # noqa: F811
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    page.get_by_role("link", name="Nouvelle campagne").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Nouvelle campagne"
    assert_french(page)

    page.get_by_label("Nom court").fill("batiment-rennes")
    page.get_by_label("Titre").fill("Artisans du bâtiment de Rennes Métropole")
    page.get_by_label("Expéditeur", exact=True).fill("Département d'Ille-et-Vilaine")
    page.get_by_label("Adresse postale de l'expéditeur").fill("1 avenue de la Préfecture, 35042 Rennes")
    page.get_by_label("Contact si aucun ambassadeur ne convient").fill("Claire Le Goff")
    page.get_by_label("Bâtiment").check()
    page.get_by_label("Territoire (facultatif").fill("Rennes Métropole")
    # A second message: the reminder to those who did not click, added without JavaScript.
    page.get_by_role("button", name="Ajouter une étape").click()
    page.wait_for_load_state()
    assert page.get_by_label("Nom court").input_value() == "batiment-rennes"  # the page came back filled
    assert page.locator("#step1_if").input_value() == "no_click"
    assert page.locator("#step1_if option:checked").inner_text() == "Si pas de clic sur le message précédent"
    page.locator("#step1_delay").fill("7")
    assert_french(page)

    page.get_by_role("button", name="Voir l'aperçu").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Aperçu").is_visible()
    preview = page.locator("section.notice").inner_text()
    assert "entreprise(s) du segment" in preview and "Exemple de message" in preview
    assert "Message 2 (e-mail, « Création »)" in preview
    assert page.get_by_role("alert").count() == 0
    text_outside_samples = page.evaluate(
        "() => { const m = document.querySelector('main').cloneNode(true);"
        " m.querySelectorAll('pre.preview').forEach(p => p.remove()); return m.innerText; }")
    assert not FORBIDDEN.findall(text_outside_samples)

    page.get_by_role("button", name="Enregistrer la campagne").click()
    page.wait_for_load_state()
    assert page.url.rsplit("/", 1)[-1].isdigit(), page.url
    assert "Traceback" not in page.content()
    with engine.connect() as conn:
        spec = conn.execute(select(Campaign.__table__.c.spec)
                            .where(Campaign.__table__.c.name == "batiment-rennes")).scalar_one()
    assert spec["segment"]["families"] == ["batiment"] and spec["segment"]["territory"]["epci"] == ["243500139"]
    assert [s["condition"] for s in spec["steps"]] == [None, "no_click"]
    assert violations == []

    # axe-core needs its script in the page: a context that lets the test inject it, on the form with a preview.
    context = page.context.browser.new_context(bypass_csp=True, locale="fr-FR")
    try:
        checked = context.new_page()
        checked.context.add_cookies(page.context.cookies())
        checked.goto(f"{live_server}/tableau/campagnes/nouvelle")
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(AXE_RUN) == []
        campaign_id = page.url.rsplit("/", 1)[-1]
        checked.goto(f"{live_server}/tableau/campagnes/nouvelle?depuis={campaign_id}")
        checked.get_by_role("button", name="Voir l'aperçu").click()
        checked.wait_for_load_state()
        assert checked.locator("#t-changements").count() == 1
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(AXE_RUN) == []
    finally:
        context.close()
