"""axe-core on every page type at a laptop's width (issue 19, point 8): the dashboard's pages signed in as the
operator (home, campaigns, one campaign, its businesses, one business, calls, follow-ups, registry, journal,
barometer, the campaign form) and the public pages (home, sign-in, landing, diagnostic, unsubscribe), zero
violations. axe-core is vendored (tests/utils/axe.min.js); the checked context lets the test inject it (the app's
CSP forbids any script but its own). Reuses the dashboard's browser fixtures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.core.links import make_token
from store.accounts import add_user
from tests.e2e.test_browser_dashboard import PASSWORD, browser, page, sign_in, world  # noqa: F401 (fixtures)

AXE = Path(__file__).parents[1] / "utils" / "axe.min.js"
AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.map(v => v.id + ': ' + v.help + ' -> ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""
pytestmark = pytest.mark.slow


def violations(context, base: str, paths: list[str]) -> dict[str, list[str]]:
    checked = context.new_page()
    checked.set_default_timeout(10_000)
    found = {}
    for path in paths:
        reply = checked.goto(f"{base}{path}")
        assert reply is not None and reply.status == 200, f"{path}: {reply and reply.status}"
        checked.add_script_tag(path=str(AXE))
        seen = checked.evaluate(AXE_RUN)
        if seen:
            found[path] = seen
    return found


def test_every_page_type_passes_axe(page, browser, live_server, world, engine, settings):  # noqa: F811
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    sign_in(page, live_server, "op@declic.fr")
    rennes = world["rennes"]
    context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        context.add_cookies(page.context.cookies())
        found = violations(context, live_server, [
            "/tableau",
            f"/tableau/campagnes/{rennes.campaign_id}",
            f"/tableau/campagnes/{rennes.campaign_id}/entreprises",
            "/tableau/entreprises",
            f"/tableau/entreprises/{rennes.business_ids[0]}",
            "/tableau/appels",
            "/tableau/suivis",
            "/tableau/registre/ambassadeurs",
            "/tableau/registre/offres",
            "/tableau/journal",
            "/tableau/barometre?territoire=departement:35",
            "/tableau/campagnes/nouvelle",
            f"/tableau/campagnes/nouvelle?depuis={rennes.campaign_id}",
        ])
    finally:
        context.close()
    secret, message = settings.resolved_secret, rennes.message_ids[0]
    public = browser.new_context(bypass_csp=True, locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        found.update(violations(public, live_server, [
            "/", "/connexion", f"/m/{make_token(secret, 'm', message, now=dt.datetime.now(dt.UTC))}",
            f"/m/{make_token(secret, 'm', message, now=dt.datetime.now(dt.UTC))}/diagnostic",
            f"/u/{make_token(secret, 'u', message, now=dt.datetime.now(dt.UTC))}",
        ]))
    finally:
        public.close()
    assert not found, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in found.items())
