"""A batch planned in parts (PostgreSQL: each part read and planned on a second connection while the one before is
being stored) decides what one pass decides (SQLite): a business met again in a later part sees what the earlier
part planned for it."""

from __future__ import annotations

import datetime as dt
import gc

import pytest
from sqlalchemy import select

from orchestrator.app import planning
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_batch
from orchestrator.app.run_tally import plan_tally
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.models import Business, Message, TriggerEvent
from tests.utils.factories import campaign_spec

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
B, M, EV = Business.__table__, Message.__table__, TriggerEvent.__table__


def _business(conn, i: int) -> int:
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    return conn.execute(B.insert().values(
        siret=f"{i:014d}", siren=f"{i:09d}", name=f"Entreprise {i}", naf_code="43.22A", metier_family="batiment",
        commune_code="35238", epci_code="243500139", departement_code="35", region_code="53", state="active",
        do_not_contact=False, phone_consent=False, email=f"e{i}@exemple.fr", created_at=at, updated_at=at)
    ).inserted_primary_key[0]


def _event(conn, n: int, business_id: int, kind: str) -> None:
    conn.execute(EV.insert().values(
        source="test", external_id=f"ev-{n}", type=kind, business_id=business_id, siret=f"{business_id:014d}",
        occurred_on=dt.date(2026, 11, 30), received_at=NOW, status="accepted", planned=False, payload={}))


def test_a_business_met_again_in_a_later_part_counts_the_earlier_parts_message(settings, engine):
    apply_campaign(engine, load_spec(campaign_spec(triggers=["creation", "first_hire"])), now=NOW)
    with engine.begin() as conn:
        ids = [_business(conn, i) for i in range(1, 10)]
        # Ten events: the first business's creation comes first, its first hire sixth (the 3rd part of 5 on
        # PostgreSQL, the same pass on SQLite).
        for n, business_id in enumerate([ids[0], *ids[1:5], ids[0], *ids[5:]]):
            _event(conn, n, business_id, "first_hire" if n == 5 else "creation")
    app = bootstrap(settings, clock=lambda: NOW)
    with plan_tally() as tally:  # as the plan flow counts its run: every part's decisions, once committed
        counts = plan_batch(app, now=NOW, limit=10)
    assert counts["events"] == 10 and counts["enrolled"] == 10
    assert sum(n for (_, outcome), n in tally.items() if outcome in ("enrolled", "held_out")) == 10
    with engine.connect() as conn:
        dues = sorted(conn.execute(select(M.c.due_at).where(M.c.business_id == ids[0])).scalars().all())
        planned = conn.execute(select(EV.c.planned)).scalars().all()
    # One message in seven days (the global cap): the first hire's message waits out the creation's.
    assert len(dues) == 2 and dues[1] - dues[0] >= dt.timedelta(days=7)
    assert planned == [True] * 10


def test_a_batch_leaves_the_garbage_collector_as_it_found_it(settings, engine, monkeypatch):
    apply_campaign(engine, load_spec(campaign_spec(triggers=["creation"])), now=NOW)
    with engine.begin() as conn:
        _event(conn, 0, _business(conn, 1), "creation")
    app = bootstrap(settings, clock=lambda: NOW)
    seen = []
    real = planning._plan_events

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "_plan_events", watched)
    was = gc.isenabled()
    try:
        gc.enable()
        assert plan_batch(app, now=NOW)["enrolled"] == 1
        assert gc.isenabled() and seen == [False]  # off while planning, on again after
        gc.disable()
        plan_batch(app, now=NOW)
        assert not gc.isenabled()  # off before: left off
        gc.enable()
        monkeypatch.setattr(planning, "_plan_events", lambda *a, **k: 1 / 0)
        monkeypatch.setattr(planning, "_culprits", lambda *a, **k: {})
        with pytest.raises(ZeroDivisionError):
            plan_batch(app, now=NOW)
        assert gc.isenabled()  # on again after an error too
    finally:
        (gc.enable if was else gc.disable)()
