"""Every e-mail template's HTML in headless Chromium at a phone's width (360 px) and the widest mail pane
(600 px), light and dark: nothing runs off the screen, numbers are tap-to-call, no raw URL is shown, and axe-core
finds no accessibility violation. axe-core is vendored (tests/utils/axe.min.js), so no network is needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.core.links import make_token
from tests.e2e.test_browser_dashboard import CHROMIUM, LAUNCH_ARGS
from tests.utils.emails import email_templates, render_email
from tests.utils.outreach import business, campaign, enrol

AXE = Path(__file__).parents[1] / "utils" / "axe.min.js"
TEMPLATES = email_templates()
CASES = [(*t, width, "light") for t in TEMPLATES for width in (360, 600)] + [(*t, 360, "dark") for t in TEMPLATES]

MEASURE = """() => ({
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    innerWidth: window.innerWidth,
    tel: [...document.querySelectorAll('a[href^="tel:"]')].map(a => a.getAttribute('href')),
    text: document.body.innerText,
    font: getComputedStyle(document.querySelector('p')).fontFamily,
})"""
AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.map(v => v.id + ': ' + v.help + ' -> ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is required: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield b
        b.close()


@pytest.mark.parametrize("name,trigger,family,width,scheme", CASES)
def test_email_fits_a_phone_calls_in_one_tap_and_passes_axe(browser, name, trigger, family, width, scheme):
    rendered, context = render_email(name, trigger, family)
    page_context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme,
                                       locale="fr-FR", java_script_enabled=True)
    try:
        page = page_context.new_page()
        page.set_default_timeout(10_000)
        page.set_content(rendered.html, wait_until="load")
        seen = page.evaluate(MEASURE)
        assert seen["innerWidth"] == width
        assert seen["scrollWidth"] <= width, f"{name}: {seen['scrollWidth']} px wide in a {width} px screen"
        assert seen["tel"], "a number to call in one tap"
        if context["ambassador"]["name"] in rendered.body:  # a procedure notice points to services, no peer
            assert seen["tel"][0] == "tel:+33612345678", "the peer's number, tap-to-call, first"
        assert "http" not in seen["text"]
        assert "sans-serif" in seen["font"]
        assert context["sender"]["name"] in seen["text"].split("Bonjour,")[0], "the sender is named at the top"
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(AXE_RUN) == []
    finally:
        page_context.close()


@pytest.mark.parametrize("width,shown", [(360, True), (1024, False)])
def test_landing_page_calls_the_peer_in_one_tap_on_phones(browser, live_server, settings, engine, width, shown):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business(conn, "35238"))
    page_context = browser.new_context(viewport={"width": width, "height": 800}, locale="fr-FR")
    try:
        page = page_context.new_page()
        page.set_default_timeout(10_000)
        token = make_token(settings.resolved_secret, "m", message_id, now=dt.datetime.now(dt.UTC))
        page.goto(f"{live_server}/m/{token}")
        call = page.locator("a.button.call")  # by class: a hidden link has no role to find it by
        assert call.inner_text() == "Appeler Claire Le Goff" and call.get_attribute("href") == "tel:+33299023536"
        assert call.is_visible() is shown
        if shown:
            box = call.bounding_box()
            assert box["y"] < 100 and box["height"] >= 44, "at the top, a full tap target"
        number = page.get_by_role("link", name="02 99 02 35 36")
        assert number.get_attribute("href") == "tel:+33299023536" and number.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page_context.close()
