"""The pages in headless Chromium (Debian's `chromium`, driven by Playwright): sign-in, a campaign's
funnel, tenant isolation, the callback round trip from the landing page to the ambassador's call list,
a CSV export. No browser is downloaded: CI installs it with `apt-get install -y chromium`."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from sqlalchemy import select

from orchestrator.core.links import make_token
from store.accounts import add_user
from store.models import CallTask
from tests.utils.outreach import seed_funnel

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "un-mot-de-passe-solide"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium") and not __import__("os").path.exists(CHROMIUM):
        pytest.fail("chromium is required: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, locale="fr-FR")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


@pytest.fixture
def world(engine):
    rennes = seed_funnel(engine)
    privas = seed_funnel(
        engine, name="ardeche-07", departement="07", commune_code="07186", treatment=4, holdout=2
    )
    add_user(
        engine,
        email="agent@ille-et-vilaine.fr",
        name="Département d'Ille-et-Vilaine",
        password=PASSWORD,
        role="collectivite",
        territory={"departements": ["35"]},
        now=dt.datetime.now(dt.UTC),
    )
    add_user(
        engine,
        email="claire@exemple.fr",
        name="Claire",
        password=PASSWORD,
        role="ambassador",
        assignee="ambassador:7",
        now=dt.datetime.now(dt.UTC),
    )
    return {"rennes": rennes, "privas": privas}


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()


def test_sign_in_and_a_campaign_funnel(page, live_server, world):
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    assert page.get_by_role("heading", name="Vos campagnes").is_visible()
    page.get_by_role("link", name="bienvenue-35").first.click() if page.get_by_role(
        "link", name="bienvenue-35"
    ).count() else page.locator(f'a[href="/tableau/campagnes/{world["rennes"].campaign_id}"]').click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Entonnoir").is_visible()
    chart = page.get_by_role("img", name="Entonnoir de la campagne bienvenue-35")
    assert chart.is_visible()
    funnel = page.locator("#t-funnel")
    assert "20,0\u00a0%" in funnel.inner_text()
    assert page.locator("#t-funnel tbody tr").first.locator("td").nth(1).inner_text() == "10"


def test_tenant_isolation_in_the_browser(page, live_server, world):
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    reply = page.goto(f"{live_server}/tableau/campagnes/{world['privas'].campaign_id}")
    assert reply.status == 404
    assert "ardeche-07" not in page.content()
    reply = page.goto(f"{live_server}/tableau/entreprises/{world['privas'].business_ids[0]}")
    assert reply.status == 404
    page.goto(f"{live_server}/tableau")
    assert "ardeche-07" not in page.content() and "bienvenue-35" in page.content()


def test_callback_round_trip_from_landing_page_to_the_ambassador_list(
    page, live_server, settings, engine, world
):
    message_id = world["rennes"].message_ids[0]
    page.goto(f"{live_server}/r/{make_token(settings.resolved_secret, 'r', message_id, now=dt.datetime.now(dt.UTC))}")
    assert page.get_by_role("heading", name="Rappelez-moi").is_visible()
    # Keyboard only: the form works without a mouse and without JavaScript.
    page.get_by_label("Votre numéro de téléphone").focus()
    page.keyboard.type("06 12 34 56 78")
    page.get_by_label("L'après-midi (14 h - 17 h)").check()
    page.get_by_label("Un mot pour Claire Le Goff (facultatif)").fill("Plutôt le jeudi")
    page.get_by_role("button", name="Rappelez-moi").press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("C'est noté")
    with engine.connect() as conn:
        task = conn.execute(select(CallTask.__table__)).one()
    assert task.assignee == "ambassador:7"

    page.goto(f"{live_server}/connexion")
    sign_in(page, live_server, "claire@exemple.fr")
    assert page.get_by_role("heading", name="Mes appels").is_visible()
    card = page.locator(f"#appel-{task.id}")
    assert "Entreprise T0" in card.inner_text() and "Plutôt le jeudi" in card.inner_text()
    card.get_by_label("J'ai parlé à la personne").check()
    card.get_by_label("Nous avons pris rendez-vous (ou nous nous sommes vus)").check()
    card.get_by_role("button", name="Enregistrer").click()
    page.wait_for_load_state()
    assert page.locator(f"#appel-{task.id}").count() == 0  # done: no longer in the open list


def test_csv_export_download(page, live_server, world):
    sign_in(page, live_server, "agent@ille-et-vilaine.fr")
    page.goto(f"{live_server}/tableau/campagnes/{world['rennes'].campaign_id}")
    page.get_by_text("Voir le détail : par famille de métiers").click()  # the breakdowns are folded
    with page.expect_download() as info:
        page.locator("#detail-by_metier_family a[href$='.csv']").click()
    download = info.value
    assert download.suggested_filename == "bienvenue-35-by_metier_family.csv"
    text = open(download.path(), encoding="utf-8-sig").read()
    lines = text.strip().splitlines()
    assert lines[0].startswith("Libellé;Ciblées") and lines[1].startswith("Bâtiment;10;")
