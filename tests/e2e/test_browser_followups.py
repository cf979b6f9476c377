"""A follow-up completed by an ambassador in headless Chromium (issue 16, point 3), with the dashboard's fixtures:
keyboard and labels only, no script, and the operator's count of missed follow-ups."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from store.followups import schedule_followups
from store.models import FollowupTask
from tests.e2e.test_browser_dashboard import browser, page, sign_in, world  # noqa: F401 (fixtures)

F = FollowupTask.__table__


def test_an_ambassador_completes_a_follow_up(page, live_server, engine, world):  # noqa: F811
    with engine.begin() as conn:
        schedule_followups(conn, dt.datetime.now(dt.UTC), ZoneInfo("Europe/Paris"))
        first = conn.execute(select(F.c.id).where(F.c.after_days == 30).order_by(F.c.id)).scalar()
        conn.execute(update(F).where(F.c.id == first).values(assignee="ambassador:7"))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, live_server, "claire@exemple.fr")
    page.goto(f"{live_server}/tableau/appels")
    page.get_by_role("link", name="Suivis à 30 et 90 jours").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Mes suivis").is_visible()
    card = page.locator(f"#suivi-{first}")
    card.get_by_label("A commencé à utiliser un outil").check()
    card.get_by_label("Outil commencé (si elle a commencé)").select_option("booking")
    card.get_by_label("Pourquoi, en une ligne").fill("Prend ses rendez-vous en ligne")
    card.get_by_role("button", name="Enregistrer le suivi").click()
    page.wait_for_load_state()
    assert page.locator(f"#suivi-{first}").count() == 0
    with engine.connect() as conn:
        row = conn.execute(select(F).where(F.c.id == first)).one()
    assert (row.status, row.outcome, row.category) == ("done", "started", "booking")
    assert errors == []
