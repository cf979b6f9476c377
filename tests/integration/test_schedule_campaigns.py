"""Scheduled and recurring campaigns on SQLite and PostgreSQL: occurrences enrol the segment as of that
moment, in batches; catch-up runs once; the minimum interval and the global caps hold across campaigns."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all, plan_batch
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.models import Business, CampaignOccurrence, Enrollment, Message, TriggerEvent
from tests.utils.factories import campaign_spec

PARIS = ZoneInfo("Europe/Paris")
B, E, M, OCC = Business.__table__, Enrollment.__table__, Message.__table__, CampaignOccurrence.__table__
QUARTERLY = {"start": "2027-01-05T09:00:00", "rrule": "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1TU",
             "min_interval": "60d"}


def scheduled(name="trimestre-batiment", **kw):
    return load_spec(campaign_spec(name=name, triggers=[], schedule=kw.pop("schedule", QUARTERLY), **kw))


def populate(engine, n: int, start: int = 0, **kw) -> list[int]:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = [dict(siret=f"{start + i:014d}", siren=f"{start + i:09d}", name=f"Entreprise {i}", naf_code="43.22A",
                 metier_family="batiment", commune_code="35238", epci_code="243500139", departement_code="35",
                 region_code="53", state="active", do_not_contact=False, phone_consent=False,
                 email=f"e{start + i}@exemple.fr", created_at=now, updated_at=now) | kw for i in range(n)]
    with engine.begin() as conn:
        conn.execute(B.insert(), rows)
        return [r[0] for r in conn.execute(select(B.c.id).where(B.c.siret.in_([r["siret"] for r in rows])))]


def test_occurrence_enrols_the_segment_in_batches_at_the_trade_slot(settings, engine):
    apply_campaign(engine, scheduled(), now=dt.datetime.now(dt.UTC))
    populate(engine, 23)
    populate(engine, 5, start=100, metier_family="alimentation")  # outside the segment
    app = bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC))
    # Before the first occurrence: nothing.
    assert plan_all(app, now=dt.datetime(2027, 1, 4, tzinfo=dt.UTC)) == {}
    slices = []
    while counts := plan_batch(app, limit=10):
        slices.append(counts)
    assert [c["occurrence_enrolled"] for c in slices] == [10, 10, 3]
    assert slices[0]["occurrences_started"] == 1 and slices[-1]["occurrences_done"] == 1
    with engine.connect() as conn:
        keys = conn.execute(select(E.c.trigger_key).distinct()).scalars().all()
        dues = conn.execute(select(M.c.due_at)).scalars().all()
        occ = conn.execute(select(OCC)).one()
    assert keys == ["occurrence:2027-01-05T08:00:00+00:00"]
    assert occ.status == "done" and occ.enrolled == 23
    local = {d.astimezone(PARIS) for d in dues}
    assert {(x.date(), x.hour, x.minute) for x in local} == {(dt.date(2027, 1, 5), 17, 30)}
    assert plan_all(app) == {}


def test_missed_occurrences_run_once_and_respect_the_minimum_interval(settings, engine):
    monthly = {"start": "2027-01-05T09:00:00", "rrule": "FREQ=MONTHLY;BYDAY=1TU", "min_interval": "45d"}
    apply_campaign(engine, scheduled(schedule=monthly), now=dt.datetime.now(dt.UTC))
    populate(engine, 4)
    first = bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC))
    assert plan_all(first)["occurrence_enrolled"] == 4
    # February occurrence: within 45 days of January's contact, every business is skipped.
    feb = plan_all(bootstrap(settings, clock=lambda: dt.datetime(2027, 2, 2, 10, tzinfo=dt.UTC)))
    assert feb["skipped_recently_contacted"] == 4 and feb["occurrence_enrolled"] == 0
    # Engine down from February to June: one run (June), standing for the missed March, April and May.
    june = plan_all(bootstrap(settings, clock=lambda: dt.datetime(2027, 6, 3, 10, tzinfo=dt.UTC)))
    assert june["occurrences_started"] == 1 and june["occurrences_missed"] == 3
    assert june["occurrence_enrolled"] == 4
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OCC)).scalar() == 3


def test_caps_hold_across_a_triggered_and_a_scheduled_campaign_of_one_owner(settings, engine):
    apply_campaign(engine, load_spec(campaign_spec()), now=dt.datetime.now(dt.UTC))  # triggered, same owner
    apply_campaign(engine, scheduled(schedule={"start": "2027-01-07T09:00:00"}),  # a single date
                   now=dt.datetime.now(dt.UTC))
    [business_id] = populate(engine, 1)
    with engine.begin() as conn:
        conn.execute(TriggerEvent.__table__.insert().values(
            source="test", external_id="c-1", type="creation", business_id=business_id, siret=f"{0:014d}",
            occurred_on=dt.date(2027, 1, 4), received_at=dt.datetime(2027, 1, 4, tzinfo=dt.UTC),
            status="accepted", planned=False, payload={}))
    plan_all(bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC)))
    plan_all(bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 7, 9, tzinfo=dt.UTC)))
    with engine.connect() as conn:
        dues = sorted(conn.execute(select(M.c.due_at)).scalars().all())
    assert len(dues) == 2
    # The scheduled message waits out the global cap of one message in seven days (then the trade's slot).
    assert dues[1] - dues[0] >= dt.timedelta(days=7)


def test_campaigns_show_lists_the_next_five_occurrences_with_real_slots(env_settings, engine):
    from orchestrator.cli.main import app

    apply_campaign(engine, scheduled(schedule={"start": "2029-01-02T09:00:00", "rrule": "FREQ=MONTHLY;BYDAY=1TU"}),
                   now=dt.datetime.now(dt.UTC))
    result = CliRunner().invoke(app, ["campaigns", "show", "trimestre-batiment", "--now", "2029-04-10T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    out = result.output
    # 1 May 2029 is a Tuesday and a holiday: the occurrence is kept, its send slot moves to Wednesday 2 May.
    assert "mardi 1er mai 2029 à 09:00" in out
    assert "mercredi 2 mai 2029 à 07:00" in out
    assert out.count("2029 à 09:00") == 5


AMBASSADOR = """key,name,metier,families,communes,epci,departements,channels,phone,email,commune,monthly_capacity
amb-1,Yann Le Bihan,plombier,batiment,,243500139,,email|phone,+33611111111,yann@exemple.fr,Rennes,3
"""


def test_an_ambassadors_capacity_holds_across_the_parts_of_a_slice(settings, engine):
    # On PostgreSQL a slice of 10 is read and planned in parts of 2 while the part before is being stored: the
    # introductions of the parts not yet committed still count against the capacity, as on SQLite.
    from store.journeys import import_ambassadors

    import_ambassadors(engine, AMBASSADOR, now=dt.datetime.now(dt.UTC))
    apply_campaign(engine, scheduled(), now=dt.datetime.now(dt.UTC))
    populate(engine, 12)
    app = bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC))
    assert plan_batch(app, limit=10)["occurrence_enrolled"] == 10
    assert plan_batch(app, limit=10)["occurrence_enrolled"] == 2
    with engine.connect() as conn:
        introduced = conn.execute(select(E.c.business_id).where(E.c.ambassador_id.is_not(None))
                                  .order_by(E.c.business_id)).scalars().all()
        occ = conn.execute(select(OCC)).one()
        enrolled = conn.execute(select(func.count()).select_from(E)).scalar()
    assert len(introduced) == 3 and enrolled == 12  # the first three businesses, then the campaign's contact
    assert occ.enrolled == 12 and occ.status == "done"


def test_a_slice_that_fails_part_way_stores_none_of_its_parts(settings, engine, monkeypatch):
    # The 7th business's decisions fail to store (its part is the 4th of 5 on PostgreSQL, the only one on SQLite):
    # the slice's earlier parts are rolled back with it, the cursor stays put, and the campaign is paused.
    import orchestrator.app.planning as planning

    apply_campaign(engine, scheduled(), now=dt.datetime.now(dt.UTC))
    ids = populate(engine, 10)
    real = planning.apply_plan

    def failing(conn, decided, event_ids, now):
        if any(e.business_id == ids[6] for e in decided.enrollments):
            raise RuntimeError("disque plein")
        return real(conn, decided, event_ids, now)

    monkeypatch.setattr(planning, "apply_plan", failing)
    app = bootstrap(settings, clock=lambda: dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC))
    counts = plan_batch(app, limit=10)
    assert counts["paused_campaigns"] == 1 and "occurrence_enrolled" not in counts
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(E)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(M)).scalar() == 0
        assert conn.execute(select(OCC.c.cursor, OCC.c.enrolled)).all() in ([], [(0, 0)])
