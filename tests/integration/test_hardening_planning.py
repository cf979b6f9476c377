"""One campaign can no longer stop planning for every tenant (issue 14, finding 4): a campaign whose stored
spec is broken, or whose planning raises, is paused with a French reason shown on the dashboard, and the
other campaigns plan. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import store.planning
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.accounts import add_user
from store.admin import apply_campaign, set_campaign_status
from store.models import Campaign, Enrollment, Message
from tests.integration.test_journeys import add_business
from tests.utils.factories import campaign_spec
from web.app import create_app

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
CAMPAIGNS, ENROLLMENTS, MESSAGES = Campaign.__table__, Enrollment.__table__, Message.__table__
PASSWORD = "un-mot-de-passe-solide"


def stored_without_checks(engine, spec: dict) -> int:
    """A campaign written straight into the store (an older version, a manual fix...), bypassing validation."""
    with engine.begin() as conn:
        return conn.execute(CAMPAIGNS.insert().values(
            name=spec["name"], owner=spec["owner"]["name"], status="active", version=1, spec=spec,
            created_at=dt.datetime.now(dt.UTC), updated_at=dt.datetime.now(dt.UTC))).inserted_primary_key[0]


def campaign_row(engine, campaign_id: int):
    with engine.connect() as conn:
        return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id)).one()


def enrolled(engine, campaign_id: int) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(ENROLLMENTS.c.id).where(ENROLLMENTS.c.campaign_id == campaign_id)).all())


def test_a_stored_spec_with_an_absurd_delay_is_paused_and_the_others_plan(settings, engine):
    good, _, _ = apply_campaign(engine, load_spec(campaign_spec("bienvenue-35")), now=NOW)
    bad = stored_without_checks(engine, campaign_spec(
        "casse-35", steps=[{"channel": "email", "delay": "999999999d", "template": "creation"}]))
    with engine.begin() as conn:
        for i in range(1, 4):
            add_business(conn, i, email=f"patron{i}@exemple.fr")

    counts = plan_all(bootstrap(settings, clock=lambda: NOW))

    assert counts["paused_campaigns"] == 1 and counts["enrolled"] == 3 and counts["messages"] == 3
    assert enrolled(engine, good) == 3 and enrolled(engine, bad) == 0
    assert campaign_row(engine, good).status == "active"
    paused = campaign_row(engine, bad)
    assert paused.status == "paused" and paused.paused_at is not None
    assert paused.paused_reason.startswith("Mise en pause automatique le 01/12/2026 à 09:00 : la planification "
                                           "de cette campagne a échoué (campagne invalide, steps.0.delay : ")
    assert "au plus 2 ans" in paused.paused_reason
    assert "declic campaigns resume casse-35" in paused.paused_reason

    # The next runs plan as usual: the paused campaign is not looked at again.
    with engine.begin() as conn:
        add_business(conn, 4, email="patron4@exemple.fr")
    later = plan_all(bootstrap(settings, clock=lambda: NOW + dt.timedelta(minutes=5)))
    assert later["enrolled"] == 1 and "paused_campaigns" not in later


def test_a_campaign_whose_planning_raises_is_paused_and_the_others_plan(settings, engine, monkeypatch):
    """Any exception while planning one campaign (here an overflow in its segment), for triggered journeys
    and for scheduled occurrences alike."""
    good, _, _ = apply_campaign(engine, load_spec(campaign_spec("bienvenue-35")), now=NOW)
    bad, _, _ = apply_campaign(engine, load_spec(campaign_spec("casse-35")), now=NOW)
    scheduled, _, _ = apply_campaign(engine, load_spec(campaign_spec(
        "mensuelle-35", triggers=[], schedule={"start": "2026-11-03T10:00:00", "rrule": "RRULE:FREQ=MONTHLY"})),
        now=NOW)
    broken_scheduled, _, _ = apply_campaign(engine, load_spec(campaign_spec(
        "mensuelle-casse-35", triggers=[], schedule={"start": "2026-11-03T10:00:00", "rrule": "RRULE:FREQ=MONTHLY"})),
        now=NOW)
    real_clause = store.planning.segment_clause

    def overflowing_for_the_broken_ones(spec, today):
        if "casse" in spec.name:
            raise OverflowError("date value out of range")
        return real_clause(spec, today)

    monkeypatch.setattr(store.planning, "segment_clause", overflowing_for_the_broken_ones)
    with engine.begin() as conn:
        for i in range(1, 4):
            add_business(conn, i, email=f"patron{i}@exemple.fr")

    counts = plan_all(bootstrap(settings, clock=lambda: NOW))

    assert counts["paused_campaigns"] == 2
    assert enrolled(engine, good) == 3 and enrolled(engine, scheduled) == 3
    assert enrolled(engine, bad) == enrolled(engine, broken_scheduled) == 0
    for campaign_id in (good, scheduled):
        assert campaign_row(engine, campaign_id).status == "active"
    for campaign_id in (bad, broken_scheduled):
        row = campaign_row(engine, campaign_id)
        assert row.status == "paused"
        assert "une durée ou une date sort des limites (date value out of range)" in row.paused_reason

    # Resumed by a person once fixed: it plans again, and its reason is gone.
    monkeypatch.setattr(store.planning, "segment_clause", real_clause)
    assert set_campaign_status(engine, "mensuelle-casse-35", "active", now=NOW)
    assert campaign_row(engine, broken_scheduled).paused_reason is None
    assert plan_all(bootstrap(settings, clock=lambda: NOW))["occurrence_enrolled"] == 3
    assert enrolled(engine, broken_scheduled) == 3

    # An error that no single campaign explains (the store unreachable...) is raised and pauses nothing.
    import orchestrator.app.planning

    def unreachable(*args, **kwargs):
        raise RuntimeError("base injoignable")

    with engine.begin() as conn:
        add_business(conn, 5)
    monkeypatch.setattr(orchestrator.app.planning, "pending_candidates", unreachable)
    with pytest.raises(RuntimeError, match="base injoignable"):
        plan_all(bootstrap(settings, clock=lambda: NOW))
    for campaign_id in (good, scheduled, broken_scheduled):
        assert campaign_row(engine, campaign_id).status == "active"


def test_the_dashboard_shows_why_a_campaign_was_paused(settings, engine):
    bad = stored_without_checks(engine, campaign_spec(
        "casse-35", steps=[{"channel": "email", "delay": "999999999d", "template": "creation"}]))
    plan_all(bootstrap(settings, clock=lambda: NOW))
    reason = campaign_row(engine, bad).paused_reason
    assert reason
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator", now=NOW)
    client = TestClient(create_app(bootstrap(settings)))
    page = client.get("/connexion")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/connexion", data={"email": "op@declic.fr", "password": PASSWORD, "csrf": csrf},
                       follow_redirects=False).status_code == 303
    shown = client.get(f"/tableau/campagnes/{bad}")
    assert shown.status_code == 200
    assert f"Campagne en pause : {reason}" in html.unescape(shown.text)
