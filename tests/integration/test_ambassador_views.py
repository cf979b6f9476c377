"""The ambassadors' capacity left this month, read by every planning batch: a batch makes a new view only for the
ambassadors whose capacity left changed since the last one (the others are the same objects), and every view
says what is left now."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.journeys import ambassador_views, import_ambassadors
from store.models import Enrollment
from tests.integration.test_journeys import AMBASSADORS, add_business
from tests.utils.factories import campaign_spec

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
ZONE = ZoneInfo("Europe/Paris")


def test_a_batch_sees_each_introduction_and_keeps_the_views_that_did_not_change(engine):
    import_ambassadors(engine, AMBASSADORS, now=NOW)
    campaign_id = apply_campaign(engine, load_spec(campaign_spec()), now=NOW)[0]
    with engine.begin() as conn:
        business_id = add_business(conn, 1)
    with engine.connect() as conn:
        before = {v.name: v for v in ambassador_views(conn, NOW, ZONE)}
    assert set(before) == {"Sophie Martin", "Yann Le Bihan"}  # the active ones
    sophie, yann = before["Sophie Martin"], before["Yann Le Bihan"]
    assert (sophie.remaining, yann.remaining) == (5, 1)

    with engine.begin() as conn:  # Sophie introduced once this month
        conn.execute(Enrollment.__table__.insert().values(
            campaign_id=campaign_id, business_id=business_id, trigger_key="creation", trigger_type="creation",
            arm="treatment", campaign_version=1, enrolled_at=NOW, ambassador_id=sophie.id))
    with engine.connect() as conn:
        after = {v.name: v for v in ambassador_views(conn, NOW, ZONE)}
    assert after["Sophie Martin"].remaining == 4 and after["Sophie Martin"] is not sophie
    assert after["Yann Le Bihan"] is yann  # unchanged: the same view
    assert after["Sophie Martin"] == sophie.__class__(**{**{f: getattr(sophie, f) for f in sophie.__slots__},
                                                         "remaining": 4})
    with engine.connect() as conn:  # the next month: every capacity is whole again
        month = {v.name: v.remaining for v in ambassador_views(conn, NOW + dt.timedelta(days=31), ZONE)}
    assert month == {"Sophie Martin": 5, "Yann Le Bihan": 1}
