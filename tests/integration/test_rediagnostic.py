"""Adoption measured, not clicks (issue 16, point 4), on SQLite and PostgreSQL: the self-diagnostic is offered again
90 days after a conversion, and once the measurement window is over, to a random share of the control group (its
only message); the report compares the diagnostics of both arms with intervals and sample sizes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.accounts import add_user
from store.admin import apply_campaign
from store.conversions import message_row, record_interaction
from store.models import Enrollment, Message
from store.rediagnostic import AFTER_CONVERSION_STEP, CONTROL_STEP, drawn
from store.report import campaign_by_id, report
from tests.integration.test_journeys import add_business
from tests.integration.test_web_dashboard import PASSWORD, signed_in
from tests.utils.factories import campaign_spec
from web.app import create_app

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
E, M = Enrollment.__table__, Message.__table__
DAY = dt.timedelta(days=1)


def at(days: int, hours: int = 9):
    return lambda: NOW + dt.timedelta(days=days, hours=hours)


def test_the_diagnostic_is_offered_again_after_a_conversion_and_to_a_control_sample(settings, engine, smtp_sink):
    spec = campaign_spec(steps=[{"channel": "email", "delay": "0d", "template": "creation"}], holdout=50,
                         control_diagnostic=50, measurement_window=120)
    campaign_id = apply_campaign(engine, load_spec(spec), now=NOW)[0]
    with engine.begin() as conn:
        for i in range(1, 41):
            add_business(conn, i, email=f"b{i}@exemple.fr")
    plan_all(bootstrap(settings, clock=lambda: NOW))
    dispatch_all(bootstrap(settings, clock=at(0)))
    with engine.connect() as conn:
        arms = {r.id: r for r in conn.execute(select(E))}
        sent = {r.enrollment_id: r.id for r in conn.execute(select(M).where(M.c.status == "sent"))}
    treated = sorted(e for e, r in arms.items() if r.arm == "treatment")
    control = sorted(e for e, r in arms.items() if r.arm == "holdout")
    assert treated and control and set(sent) == set(treated)
    converted = treated[:3]
    with engine.begin() as conn:
        for e in converted:
            record_interaction(conn, message_row(conn, sent[e]), "offer_enrolled", {"source": "test"}, at=NOW + DAY)

    assert "rediagnostic_messages" not in plan_all(bootstrap(settings, clock=at(60)))
    counts = plan_all(bootstrap(settings, clock=at(92)))
    assert counts["rediagnostic_messages"] == 3 and "control_diagnostic_messages" not in counts
    # The window is not over (120 days): the control group has still received nothing.
    with engine.connect() as conn:
        assert not conn.execute(select(M).where(M.c.enrollment_id.in_(control))).all()

    sample = [e for e in control if drawn(campaign_id, e, 50)]
    assert 0 < len(sample) < len(control)
    counts = plan_all(bootstrap(settings, clock=at(121)))
    assert counts["control_diagnostic_messages"] == len(sample)
    assert "control_diagnostic_messages" not in plan_all(bootstrap(settings, clock=at(122)))  # once
    assert dispatch_all(bootstrap(settings, clock=at(122)))["sent"] == 3 + len(sample)
    with engine.connect() as conn:
        again = {r.enrollment_id: r for r in conn.execute(select(M).where(M.c.step.in_((AFTER_CONVERSION_STEP,
                                                                                          CONTROL_STEP))))}
        control_messages = conn.execute(select(M).where(M.c.enrollment_id.in_(control))).all()
    assert {e for e, r in again.items() if r.step == AFTER_CONVERSION_STEP} == set(converted)
    assert {e for e, r in again.items() if r.step == CONTROL_STEP} == set(sample)
    assert all(r.template == "rediagnostic" and r.status == "sent" for r in again.values())
    assert {r.enrollment_id for r in control_messages} == set(sample)  # the only messages a control business gets
    last = smtp_sink.messages[-1]
    assert "/diagnostic" in last.get_body(("plain",)).get_content()  # the short link to answer the five questions again

    # The owners answer: the contacted ones score 4 or 5, the control ones 1 or 2.
    with engine.begin() as conn:
        for e, r in again.items():
            score = (5 if e % 2 else 4) if r.step == AFTER_CONVERSION_STEP else (1 if e % 2 else 2)
            record_interaction(conn, message_row(conn, r.id), "diagnostic_completed",
                               {"version": 1, "score": score}, at=NOW + 123 * DAY)
    with engine.connect() as conn:
        result = report(engine, campaign_by_id(conn, campaign_id))
    by_arm = {row["arm"]: row for row in result.table("diagnostic").rows}
    contacted, witness = by_arm["Contactées"], by_arm["Témoin (échantillon tiré au sort)"]
    assert (contacted["asked"], contacted["n"], contacted["well_equipped"]) == (3, 3, 3)
    assert (witness["asked"], witness["n"], witness["well_equipped"]) == (len(sample), len(sample), 0)
    effect = {row["measure"]: row for row in result.table("diagnostic_uplift").rows}
    share = effect["Part bien équipées (points)"]
    assert share["difference"] == 100 and share["lower"] > 0 and share["treated_n"] == 3
    assert effect["Score moyen (sur 5)"]["lower"] > 0

    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator", now=NOW)
    page = signed_in(create_app(bootstrap(settings)), "op@declic.fr").get(f"/tableau/campagnes/{campaign_id}")
    assert page.status_code == 200 and 'id="t-diagnostic_uplift"' in page.text and "Part bien équipées" in page.text
