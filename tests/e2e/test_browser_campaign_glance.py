"""The campaign page at a glance in headless Chromium (issue 19, point 5), at a laptop's width (1280 px) and a
phone's (390 px): nothing runs off the screen, the map and the effect sentence are shown, the breakdowns are
folded, and axe-core (vendored, tests/utils/axe.min.js) finds no accessibility violation. Reuses the dashboard's
browser fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_browser_dashboard import browser, page, sign_in, world  # noqa: F401 (fixtures)

AXE = Path(__file__).parents[1] / "utils" / "axe.min.js"
AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.map(v => v.id + ': ' + v.help + ' -> ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""
MEASURE = """() => ({
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    innerWidth: window.innerWidth,
    open: [...document.querySelectorAll('details.breakdown')].filter(d => d.open).length,
    folded: document.querySelectorAll('details.breakdown').length,
})"""
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("width", [1280, 390])
def test_campaign_page_at_a_glance_fits_and_passes_axe(page, live_server, world, width):  # noqa: F811
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    # axe-core needs its script in the page: a context that lets the test inject it (the app's CSP forbids it).
    context = page.context.browser.new_context(bypass_csp=True, locale="fr-FR",
                                               viewport={"width": width, "height": 900})
    try:
        checked = context.new_page()
        checked.set_default_timeout(10_000)
        checked.context.add_cookies(page.context.cookies())
        checked.goto(f"{live_server}/tableau/campagnes/{world['rennes'].campaign_id}")
        seen = checked.evaluate(MEASURE)
        assert seen["innerWidth"] == width
        assert seen["scrollWidth"] <= width, f"{seen['scrollWidth']} px wide in a {width} px screen"
        assert checked.locator("#carte svg.map").is_visible()
        assert checked.get_by_role("img", name="Carte du territoire de la campagne").is_visible()
        effect = checked.locator("#effect .sentence")
        assert effect.is_visible() and "points, entre" in effect.inner_text()
        assert seen["folded"] >= 7 and seen["open"] == 0
        assert not checked.locator("#t-by_commune_code").is_visible()
        checked.get_by_text("Voir le détail : par commune").click()
        assert checked.locator("#t-by_commune_code").is_visible()
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(AXE_RUN) == []
    finally:
        context.close()
