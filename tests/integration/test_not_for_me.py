"""Answers to "Ce n'est pas pour moi" (issue 16, point 2), on SQLite and PostgreSQL: each reason leads to its
campaign's action, and a paused business gets nothing until its date, then one gentle message."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.links import make_token
from orchestrator.core.planner import ANSWER_STEP
from store.admin import apply_campaign
from store.conversions import message_row
from store.journeys import import_offers
from store.models import Business, CallTask, Enrollment, Interaction, Message, TriggerEvent
from store.not_for_me import answer_not_for_me, record_tool_answer
from tests.integration.test_journeys import add_business
from tests.utils.factories import campaign_spec
from web.app import create_app

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone
B, E, M = Business.__table__, Enrollment.__table__, Message.__table__
IA, T, EV = Interaction.__table__, CallTask.__table__, TriggerEvent.__table__
OFFERS = """key,title,provider,kind,families,territory,format,duration,hours,price,url
diag-35,Diagnostic numérique,CMA Bretagne,diagnostic,batiment,departement:35,sur_place,2 h,sur rendez-vous,gratuit,
devis,Atelier devis en ligne,CCI,formation_courte,,epci:243500139,a_distance,1 h 30,mardi 12h30-14h,20 €,
"""
TWO_STEPS = [{"channel": "email", "delay": "0d", "template": "creation"},
             {"channel": "email", "delay": "7d", "template": "creation"}]


def journeys(settings, engine, n: int, **spec) -> tuple[int, dict[int, int]]:
    """A two-step campaign, `n` reachable businesses, their first messages sent: (campaign id, business -> first)."""
    import_offers(engine, OFFERS, now=dt.datetime.now(dt.UTC))
    campaign_id, _, _ = apply_campaign(engine, load_spec(campaign_spec(steps=TWO_STEPS, **spec)), now=NOW)
    with engine.begin() as conn:
        ids = [add_business(conn, i, email=f"b{i}@exemple.fr") for i in range(1, n + 1)]
    plan_all(bootstrap(settings, clock=lambda: NOW))
    assert dispatch_all(bootstrap(settings, clock=lambda: NOW + dt.timedelta(hours=9)))["sent"] == n
    with engine.connect() as conn:
        first = {r.business_id: r.id for r in conn.execute(select(M).where(M.c.step == 0))}
    return campaign_id, {b: first[b] for b in ids}


def answer(engine, message_id: int, reason: str, when: dt.datetime, **kw):
    with engine.begin() as conn:
        return answer_not_for_me(conn, message_row(conn, message_id), reason, now=when, zone=PARIS, **kw)


def test_a_paused_business_gets_nothing_until_its_date_then_one_gentle_message(settings, engine, smtp_sink):
    _, first = journeys(settings, engine, 2)
    paused, other = first
    answered = answer(engine, first[paused], "pas_le_moment", NOW + dt.timedelta(days=1), months=3)
    assert answered.action == "pause"
    assert answered.paused_until == dt.datetime(2027, 3, 2, 8, 0, tzinfo=dt.UTC)
    # Another campaign's message already planned for it waits in place: the dispatcher does not claim it.
    with engine.begin() as conn:
        campaign_id, context = conn.execute(select(M.c.campaign_id, M.c.context)).first()
        other_enrollment = conn.execute(E.insert().values(
            campaign_id=campaign_id, business_id=paused, trigger_key="first_hire", trigger_type="first_hire",
            arm="treatment", campaign_version=1, enrolled_at=NOW)).inserted_primary_key[0]
        conn.execute(M.insert().values(campaign_id=campaign_id, enrollment_id=other_enrollment, business_id=paused,
                                       step=0, channel="email", template="creation", recipient="b1@exemple.fr",
                                       due_at=NOW + dt.timedelta(days=2), status="planned", attempts=0,
                                       context=context, created_at=NOW))
    week = bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=7, hours=9))
    assert plan_all(week)["followup_messages"] == 1  # only the other business's second step
    assert dispatch_all(bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=8, hours=9)))["sent"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(M.c.business_id).where(M.c.step == 1)).scalars().all() == [other]
        waiting = conn.execute(select(M.c.status).where(M.c.enrollment_id == other_enrollment))
        assert waiting.scalar() == "planned"
    # A day before its date: still nothing.
    eve = bootstrap(settings, clock=lambda: dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC))
    assert plan_all(eve) == {}
    assert dispatch_all(eve).get("sent", 0) == 0
    # Its date has come: the campaign's later step stops, one gentle message is planned and leaves.
    after = bootstrap(settings, clock=lambda: dt.datetime(2027, 3, 2, 9, tzinfo=dt.UTC))
    counts = plan_all(after)
    assert counts["answer_followup_messages"] == 1 and counts["stopped_not_for_me"] == 1
    with engine.connect() as conn:
        rows = {r.step: r for r in conn.execute(select(M).where(M.c.business_id == paused,
                                                                M.c.enrollment_id != other_enrollment))}
    assert rows[1].status == "cancelled" and rows[1].last_error == "not_for_me"
    assert rows[ANSWER_STEP].template == "apres_pause" and rows[ANSWER_STEP].status == "planned"
    later = bootstrap(settings, clock=lambda: dt.datetime(2027, 3, 3, 9, tzinfo=dt.UTC))
    assert dispatch_all(later)["sent"] == 2  # the gentle message and the other campaign's waiting one
    assert plan_all(later) == {}  # one gentle message, never two


def test_each_reason_leads_to_its_action(settings, engine):
    campaign_id, first = journeys(settings, engine, 6)
    cher, utile, commencer, transmettre, equipe, autre = first
    day = NOW + dt.timedelta(days=1)
    assert answer(engine, first[cher], "trop_cher", day).action == "free_offers"
    assert answer(engine, first[utile], "pas_utile", day).action == "testimony"
    call = answer(engine, first[commencer], "par_ou_commencer", day)
    assert call.action == "ambassador_call" and call.task_id
    assert answer(engine, first[transmettre], "transmettre", day).action == "takeover"
    assert answer(engine, first[equipe], "deja_equipe", day).action == "end_and_ask"
    assert answer(engine, first[autre], "autre", day).action == "record"
    with engine.begin() as conn:
        assert record_tool_answer(conn, message_row(conn, first[equipe]), "quotes_invoices", now=day)
        assert not record_tool_answer(conn, message_row(conn, first[equipe]), "quotes_invoices", now=day)
        task = conn.execute(select(T).where(T.c.id == call.task_id)).one()
        event = conn.execute(select(EV).where(EV.c.source == "landing")).one()
        stage = conn.execute(select(B.c.lifecycle_stage).where(B.c.id == transmettre)).scalar()
        adopted = conn.execute(select(IA.c.data).where(IA.c.kind == "tool_adopted")).scalar()
    assert task.status == "open" and "par où commencer" in task.script and task.business_id == commencer
    assert event.type == "takeover" and event.business_id == transmettre and not event.planned
    assert stage == "transfer"
    assert adopted == {"source": "landing", "category": "quotes_invoices"}

    counts = plan_all(bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=8, hours=9)))
    with engine.connect() as conn:
        second = {r.business_id: r for r in conn.execute(select(M).where(M.c.step == 1))}
        answers = {r.business_id: r for r in conn.execute(select(M).where(M.c.step == ANSWER_STEP))}
    # "trop cher": its next message shows free offers only; the others still see both.
    assert [o["price"] for o in second[cher].context["offers"]] == ["gratuit"]
    assert sorted(o["price"] for o in second[autre].context["offers"]) == ["20 €", "gratuit"]
    assert second[commencer].status == "planned"  # the journey goes on beside the call
    # The journey ends for those who are equipped, hand over, or get a peer's testimony instead.
    for b in (utile, transmettre, equipe):
        assert second[b].status == "cancelled" and second[b].last_error == "not_for_me"
    assert answers[utile].variant == "temoignage" and answers[utile].template == "creation"
    assert set(answers) == {utile}
    assert counts["stopped_not_for_me"] == 3
    # A new creation-free business later gets free offers only in a new journey too.
    with engine.connect() as conn:
        assert conn.execute(select(B.c.free_offers_only).where(B.c.id == cher)).scalar() is True


def test_a_campaign_sets_what_a_reason_does(settings, engine):
    _, first = journeys(settings, engine, 1, not_for_me={"trop_cher": "record", "pas_le_moment": "record"})
    (only,) = first
    assert answer(engine, first[only], "trop_cher", NOW + dt.timedelta(days=1)).action == "record"
    assert answer(engine, first[only], "pas_le_moment", NOW + dt.timedelta(days=1)).paused_until is None
    with engine.connect() as conn:
        row = conn.execute(select(B.c.free_offers_only, B.c.paused_until).where(B.c.id == only)).one()
    assert row == (False, None)


def test_the_landing_page_asks_the_months_and_the_tool(settings, engine):
    _, first = journeys(settings, engine, 2)
    paused, equipped = first
    with TestClient(create_app(bootstrap(settings))) as client:
        page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', first[paused], now=dt.datetime.now(dt.UTC))}")
        for reason in ("pas_le_moment", "trop_cher", "pas_utile", "par_ou_commencer", "transmettre", "deja_equipe"):
            assert f'value="{reason}"' in page.text
        assert "12 mois" in page.text and "<script" not in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        reply = client.post(page.url.path + "/pas-pour-moi",
                            data={"csrf": csrf, "reason": "pas_le_moment", "months": "12"})
        assert reply.status_code == 200 and "nous ne vous écrirons plus avant le" in reply.text
        with engine.connect() as conn:
            until = conn.execute(select(B.c.paused_until).where(B.c.id == paused)).scalar()
        assert until is not None and 360 <= (until.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).days <= 366

        token = make_token(settings.resolved_secret, "m", first[equipped], now=dt.datetime.now(dt.UTC))
        page = client.get(f"/m/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        reply = client.post(page.url.path + "/pas-pour-moi", data={"csrf": csrf, "reason": "deja_equipe"})
        assert "qu'utilisez-vous déjà" in reply.text and 'value="payment"' in reply.text
        assert client.post(page.url.path + "/outil", data={"csrf": csrf, "category": "x"}).status_code == 400
        reply = client.post(page.url.path + "/outil", data={"csrf": csrf, "category": "payment"})
        assert reply.status_code == 200 and "Merci, c'est noté." in reply.text
    with engine.connect() as conn:
        assert conn.execute(select(IA.c.data).where(IA.c.kind == "tool_adopted")).scalar()["category"] == "payment"
        assert conn.execute(select(E.c.not_for_me)).scalars().all().count("deja_equipe") == 1
