"""The planner's PostgreSQL bulk paths (rows as one array per column, `= ANY(array)` for id lists) store and find
exactly what SQLAlchemy's own INSERT and IN do (issue 18, point 4)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from store.planning import ENROLLMENTS, MESSAGES, insert_arrays
from store.sql import among, insert_for
from tests.utils.outreach import business as seed_business

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def _campaign(conn) -> int:
    from store.models import Campaign

    return conn.execute(Campaign.__table__.insert().values(
        name="c", owner="o", status="active", version=1, spec={}, created_at=NOW, updated_at=NOW)
    ).inserted_primary_key[0]


def _enrollments(campaign_id: int, business_id: int, keys: list[str]) -> list[dict]:
    return [{"campaign_id": campaign_id, "business_id": business_id, "trigger_event_id": None, "trigger_key": k,
             "trigger_type": "creation", "arm": "treatment", "variant": None if i % 2 else "court",
             "campaign_version": 1, "enrolled_at": NOW, "ambassador_id": None, "moment": f"m{i}" if i else None}
            for i, k in enumerate(keys)]


def _messages(campaign_id: int, business_id: int, enrollment_ids: list[int]) -> list[dict]:
    return [{"campaign_id": campaign_id, "enrollment_id": e, "business_id": business_id, "step": 0,
             "channel": "email", "template": "creation", "variant": None, "recipient": "é@exemple.fr",
             "due_at": NOW + dt.timedelta(hours=i), "status": "planned", "attempts": 0,
             "context": {"commune": "Saint-Malo", "offres": [1, None, "à"], "vide": None}, "created_at": NOW,
             "last_error": None if i else "raison"}
            for i, e in enumerate(enrollment_ids)]


def _stored(conn, table, ids: list[int]) -> list[tuple]:
    rows = conn.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id)).all()
    return [tuple(v for k, v in r._mapping.items() if k not in ("id", "enrollment_id", "trigger_key")) for r in rows]


def test_arrays_store_what_sqlalchemy_stores_and_skip_conflicts(engine):
    with engine.begin() as conn:
        business_id = seed_business(conn, "35288")
        campaign_id = _campaign(conn)
        tail = "ON CONFLICT (campaign_id, business_id, trigger_key) DO NOTHING RETURNING id, trigger_key"
        by_arrays = insert_arrays(conn, ENROLLMENTS, _enrollments(campaign_id, business_id, ["a1", "a2", "a3"]), tail)
        if engine.dialect.name != "postgresql":
            assert by_arrays is None  # SQLite keeps SQLAlchemy's INSERT
            return
        stmt = insert_for(conn, ENROLLMENTS).on_conflict_do_nothing(
            index_elements=["campaign_id", "business_id", "trigger_key"])
        by_core = conn.execute(stmt.returning(ENROLLMENTS.c.id, ENROLLMENTS.c.trigger_key),
                               _enrollments(campaign_id, business_id, ["b1", "b2", "b3"])).all()
        by_arrays.sort()  # RETURNING order is not promised
        assert [k for _, k in by_arrays] == ["a1", "a2", "a3"]
        assert _stored(conn, ENROLLMENTS, [i for i, _ in by_arrays]) == _stored(conn, ENROLLMENTS,
                                                                               [i for i, _ in by_core])
        # Already stored: nothing inserted, nothing returned.
        assert insert_arrays(conn, ENROLLMENTS, _enrollments(campaign_id, business_id, ["a1", "a2"]), tail) == []

        assert insert_arrays(conn, MESSAGES, _messages(campaign_id, business_id, [i for i, _ in by_arrays])) == []
        conn.execute(MESSAGES.insert(), _messages(campaign_id, business_id, [i for i, _ in by_core]))
        ids = dict(conn.execute(select(MESSAGES.c.enrollment_id, MESSAGES.c.id)).all())
        assert _stored(conn, MESSAGES, [ids[i] for i, _ in by_arrays]) == _stored(conn, MESSAGES,
                                                                                 [ids[i] for i, _ in by_core])
        texts = conn.exec_driver_sql("SELECT context::text FROM message ORDER BY id").scalars().all()
        assert texts[:3] == texts[3:]  # the same JSON text, byte for byte


def test_among_finds_what_in_finds(engine):
    with engine.begin() as conn:
        business_id = seed_business(conn, "35288")
        campaign_id = _campaign(conn)
        conn.execute(ENROLLMENTS.insert(), _enrollments(campaign_id, business_id, ["k1", "k2"]))
        for ids in ([business_id], [business_id, 999_999], [999_999], list(range(1, 3000))):
            query = select(ENROLLMENTS.c.trigger_key).order_by(ENROLLMENTS.c.id)
            assert (conn.execute(query.where(among(conn, ENROLLMENTS.c.business_id, ids))).scalars().all()
                    == conn.execute(query.where(ENROLLMENTS.c.business_id.in_(ids))).scalars().all())
