"""One App for every entry point (issue 17, point 2): the web app serves the App of `bootstrap()` it is given, so its
routes read that App's clock and zone; a route's unit of work (`web.deps.UnitDep`) is committed before the answer
leaves and rolled back when the route fails; the owner's callback is recorded through the app service at the App's
clock."""

from __future__ import annotations

import datetime as dt
import re

from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.links import make_token
from store import audit
from store.models import AuditEntry, CallTask, Notice
from tests.utils.outreach import business, campaign, enrol
from web.app import create_app
from web.deps import UnitDep

# A Tuesday, 10 h 30 in Paris.
FIXED = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
AUDIT = AuditEntry.__table__


def _web(settings):
    declic = bootstrap(settings, clock=lambda: FIXED)
    web = create_app(declic)

    @web.post("/essai/{target}")
    def write(target: str, unit: UnitDep) -> dict[str, str]:
        audit.record(unit.conn, actor="essai", role="cli", action="view_business", target=target, at=unit.now)
        if target == "refus":
            raise HTTPException(409, "refusé")
        return {"now": unit.now.isoformat(), "today": unit.today.isoformat(), "zone": str(unit.zone)}

    return declic, web


def test_a_route_unit_of_work_runs_at_the_app_clock_and_commits_before_the_answer(settings, engine):
    declic, web = _web(settings)
    assert web.state.app is declic
    with TestClient(web) as client:
        reply = client.post("/essai/business:1")
        assert reply.json() == {"now": "2026-12-01T09:30:00+00:00", "today": "2026-12-01", "zone": "Europe/Paris"}
        with engine.connect() as conn:  # another connection sees the row as soon as the answer is there
            assert conn.execute(select(AUDIT.c.target).where(AUDIT.c.actor == "essai")).scalars().all() == [
                "business:1"]
        assert client.post("/essai/refus").status_code == 409
    with engine.connect() as conn:
        assert conn.execute(select(AUDIT.c.target).where(AUDIT.c.target == "refus")).first() is None


def test_the_callback_is_due_by_the_app_clock_and_zone(settings, engine):
    declic, web = _web(settings)
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business(conn, "35238"))
    token = make_token(settings.resolved_secret, "m", message_id, now=FIXED)
    with TestClient(web) as client:
        page = client.get(f"/m/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        reply = client.post(f"/m/{token}/rappel", data={"csrf": csrf, "phone": "06 12 34 56 78", "slot": "matin"})
        assert reply.status_code == 200
        again = client.post(f"/m/{token}/rappel", data={"csrf": csrf, "phone": "06 12 34 56 78", "slot": "soir"})
        assert again.status_code == 200
    with engine.connect() as conn:
        (task,) = conn.execute(select(CallTask.__table__)).all()
        (notice,) = conn.execute(select(Notice.__table__)).all()
    # 10 h 30 in Paris: this morning's slot (from 10 h) is less than an hour away, so tomorrow at 10 h, Paris time;
    # the second request of the day changes nothing.
    assert _utc(task.due_at) == dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
    assert _utc(task.created_at) == FIXED
    # The ambassador's e-mail, queued once that day at the App's clock, says the time in the App's zone.
    assert notice.cause_key == f"callback_request:{task.id}:2026-12-01" and _utc(notice.due_at) == FIXED
    assert "à partir du mercredi 02/12 à 10 h." in notice.body


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite: naive UTC
