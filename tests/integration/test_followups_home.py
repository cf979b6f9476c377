"""Issue 16, point 3 (rest): a missed follow-up shows on the operator's home page, as a count with a link to the
follow-ups; a collectivité's home page does not carry it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import update

from store.followups import followup_clause, missed_count, schedule_followups
from store.models import FollowupTask
from tests.integration.test_web_dashboard import app, signed_in, world  # noqa: F401 (fixtures)

F = FollowupTask.__table__


def test_the_operator_home_counts_the_missed_followups_and_links_to_them(app, world, engine):  # noqa: F811
    paris = ZoneInfo("Europe/Paris")  # the deployment's zone
    today = dt.datetime.now(paris).date()
    with engine.begin() as conn:
        assert schedule_followups(conn, dt.datetime.now(dt.UTC), paris) >= 2
        ids = [r.id for r in conn.execute(F.select().order_by(F.c.id))]
        conn.execute(update(F).values(due_on=today + dt.timedelta(days=10)))  # none due yet
    operator = signed_in(app, "op@declic.fr")
    page = operator.get("/tableau")
    assert page.status_code == 200 and "Aucun suivi manqué" in page.text

    with engine.begin() as conn:
        # Two open follow-ups 8 and 30 days past their date, one 6 days past (not yet missed), one done.
        for fid, days in zip(ids[:3], (8, 30, 6), strict=True):
            conn.execute(update(F).where(F.c.id == fid).values(due_on=today - dt.timedelta(days=days)))
        conn.execute(update(F).where(F.c.id == ids[3]).values(due_on=today - dt.timedelta(days=40), status="done"))
        assert missed_count(conn, followup_clause("operator", None, None), today=today) == 2
    page = operator.get("/tableau")
    assert "2 suivis manqués</strong>" in page.text
    assert '<a href="/tableau/suivis">Voir les suivis à relancer</a>' in page.text
    assert "<script" not in page.text

    agent = signed_in(app, "agent@ille-et-vilaine.fr")
    assert "Suivis manqués" not in agent.get("/tableau").text
