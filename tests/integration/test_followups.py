"""Follow-up that lasts (issue 16, point 3), on SQLite and PostgreSQL: a callback, an enrolment or a meeting gets
follow-ups at 30 and 90 days for whoever took it; an ambassador completes one in its workspace; a missed one
shows for the operator."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from store.followups import followup_clause, followups, schedule_followups
from store.models import FollowupTask, Interaction
from tests.integration.test_web_dashboard import app, signed_in, world  # noqa: F401 (fixtures)

F, IA = FollowupTask.__table__, Interaction.__table__
PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone


def test_followups_are_planned_completed_by_the_ambassador_and_missed_ones_shown(app, world, engine):  # noqa: F811
    with engine.begin() as conn:
        created = schedule_followups(conn, dt.datetime.now(dt.UTC), PARIS)
        assert schedule_followups(conn, dt.datetime.now(dt.UTC), PARIS) == 0  # once per interaction and delay
        rows = conn.execute(select(F)).all()
    assert created == len(rows) and created % 2 == 0 and {r.after_days for r in rows} == {30, 90}
    mine = [r for r in rows if r.assignee == "ambassador:7"]
    assert len(mine) == 2  # the callback Claire took, at 30 and 90 days
    thirty = next(r for r in mine if r.after_days == 30)
    with engine.connect() as conn:
        late = followups(conn, followup_clause("operator", None, None), today=thirty.due_on + dt.timedelta(days=8),
                         missed_only=True)
        on_time = followups(conn, followup_clause("operator", None, None), today=thirty.due_on + dt.timedelta(days=6),
                            missed_only=True)
    assert thirty.id in {f["id"] for f in late} and thirty.id not in {f["id"] for f in on_time}

    claire = signed_in(app, "claire@exemple.fr")
    page = claire.get("/tableau/suivis")
    assert page.status_code == 200 and "Mes suivis" in page.text and "<script" not in page.text
    assert f'id="suivi-{thirty.id}"' in page.text
    assert "Suivis manqués" not in page.text  # the operator's view only
    others = [r for r in rows if r.assignee == "ambassador:8"]
    assert all(f'id="suivi-{r.id}"' not in page.text for r in others)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert claire.post(f"/tableau/suivis/{others[0].id}", data={"csrf": csrf, "outcome": "in_progress"}
                       ).status_code == 404
    assert claire.post(f"/tableau/suivis/{thirty.id}", data={"csrf": csrf, "outcome": "started"}).status_code == 400
    reply = claire.post(f"/tableau/suivis/{thirty.id}", data={"csrf": csrf, "outcome": "started",
                                                              "category": "payment", "note": "Terminal de paiement"},
                        follow_redirects=False)
    assert reply.status_code == 303
    with engine.connect() as conn:
        done = conn.execute(select(F).where(F.c.id == thirty.id)).one()
        adopted = conn.execute(select(IA.c.data).where(IA.c.kind == "tool_adopted")).scalars().all()
    assert (done.status, done.outcome, done.category, done.done_by) == ("done", "started", "payment", "Claire")
    assert {"source": "followup", "followup_id": thirty.id, "category": "payment"} in adopted

    operator = signed_in(app, "op@declic.fr")
    page = operator.get("/tableau/suivis")
    assert "Suivis manqués :" in page.text
