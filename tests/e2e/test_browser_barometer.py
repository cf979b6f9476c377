"""The territory barometer page in headless Chromium (issue 16, point 6): reached from the menu, axe-core finds
no accessibility violation, the strict CSP reports nothing, and the CSV downloads. Reuses the dashboard's
browser fixtures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from store.models import Interaction
from tests.e2e.test_browser_dashboard import browser, page, sign_in, world  # noqa: F401 (fixtures)

AXE = Path(__file__).parents[1] / "utils" / "axe.min.js"
AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.map(v => v.id + ': ' + v.help + ' -> ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""
pytestmark = pytest.mark.slow


def test_barometer_page_from_the_menu_passes_axe_and_the_csp(page, live_server, world, engine):  # noqa: F811
    with engine.begin() as conn:
        for i, b in enumerate(world["rennes"].business_ids):
            conn.execute(Interaction.__table__.insert().values(
                business_id=b, kind="diagnostic_completed", at=dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC),
                data={"score": i % 6, "answers": {}, "source": "landing"}))
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    page.get_by_role("link", name="Baromètre").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Baromètre numérique : Ille-et-Vilaine"
    assert page.locator("#t-ensemble tbody tr").count() == 1
    assert page.locator("svg[role=img]").count() == 2  # the chart and the tile map
    assert violations == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Exporter en CSV").click()
    assert download.value.suggested_filename == "barometre-35.csv"

    # axe-core needs its script in the page: a context that lets the test inject it.
    context = page.context.browser.new_context(bypass_csp=True, locale="fr-FR")
    try:
        checked = context.new_page()
        checked.context.add_cookies(page.context.cookies())
        checked.goto(f"{live_server}/tableau/barometre")
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(AXE_RUN) == []
    finally:
        context.close()
