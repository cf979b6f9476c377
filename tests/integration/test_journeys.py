"""Journeys end to end on SQLite and PostgreSQL: a three-step campaign with a channel fallback and a
no-click condition, ambassadors and offers from CSV, idempotent reruns, versioned specs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.journeys import import_ambassadors, import_offers
from store.models import Business, Enrollment, Interaction, Message, TriggerEvent
from tests.utils.factories import campaign_spec

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
B, E, M = Business.__table__, Enrollment.__table__, Message.__table__

AMBASSADORS = """key,name,metier,families,communes,epci,departements,channels,phone,email,commune,monthly_capacity
amb-1,Yann Le Bihan,plombier,batiment,,243500139,,email|phone,+33611111111,yann@exemple.fr,Rennes,1
amb-2,Sophie Martin,boulangère,alimentation,35238,,,phone,+33622222222,,Rennes,5
amb-3,Sans Contact,,batiment,,,35,email,,,,3
amb-4,Mauvais Code,,plomberie,99999,,,fax,+33633333333,,,-2
"""
OFFERS = """key,title,provider,kind,families,territory,format,duration,hours,price,url
diag-35,Diagnostic numérique,CMA Bretagne,diagnostic,batiment|alimentation,departement:35,sur_place,2 h,sur rendez-vous,gratuit,
devis,Atelier devis en ligne,CCI,formation_courte,,epci:243500139,a_distance,1 h 30,mardi 12h30-14h,20 €,
loin,Atelier Brest,CCI,accompagnement,,epci:242900314,sur_place,1 h,lundi,gratuit,
vide,,CCI,aide,,region:xx,papier,,,,
"""


def add_business(conn, i: int, **kw) -> int:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    values = dict(siret=f"{i:014d}", siren=f"{i:09d}", name=f"Entreprise {i}", naf_code="43.22A",
                  metier_family="batiment", commune_code="35238", epci_code="243500139", departement_code="35",
                  region_code="53", state="active", do_not_contact=False, phone_consent=False,
                  created_at=now, updated_at=now)
    values.update(kw)
    business_id = conn.execute(B.insert().values(**values)).inserted_primary_key[0]
    conn.execute(TriggerEvent.__table__.insert().values(
        source="test", external_id=f"ev-{i}", type="creation", business_id=business_id, siret=values["siret"],
        occurred_on=dt.date(2026, 11, 30), received_at=now, status="accepted", planned=False, payload={}))
    return business_id


def test_csv_imports_explain_their_rejects(engine):
    imported, rejects = import_ambassadors(engine, AMBASSADORS, now=dt.datetime.now(dt.UTC))
    assert imported == 2
    by_line = {(r.line, r.field) for r in rejects}
    assert (4, "phone") in by_line  # neither phone nor e-mail
    assert {(5, "families"), (5, "communes"), (5, "channels"), (5, "monthly_capacity")} <= by_line
    imported, rejects = import_offers(engine, OFFERS, now=dt.datetime.now(dt.UTC))
    assert imported == 3
    assert {(5, "title"), (5, "kind"), (5, "format"), (5, "territory"), (5, "price")} <= {(r.line, r.field)
                                                                                        for r in rejects}
    # Re-import updates by key instead of duplicating.
    assert import_ambassadors(engine, AMBASSADORS, now=dt.datetime.now(dt.UTC))[0] == 2
    with engine.connect() as conn:
        assert conn.execute(select(Enrollment.__table__.c.id)).all() == []


def test_three_step_campaign_with_fallback_condition_ambassador_and_offers(settings, engine, smtp_sink):
    import_ambassadors(engine, AMBASSADORS, now=dt.datetime.now(dt.UTC))
    import_offers(engine, OFFERS, now=dt.datetime.now(dt.UTC))
    spec = load_spec(campaign_spec(steps=[
        {"channel": "email", "delay": "0d", "template": "creation"},
        {"channel": "email", "delay": "7d", "template": "creation", "if": "no_click"},
        {"channel": "letter", "delay": "7d", "template": "creation"},
    ]))
    campaign_id, _, _ = apply_campaign(engine, spec, now=NOW)
    with engine.begin() as conn:
        clicker = add_business(conn, 1, email="clic@exemple.fr")
        silent = add_business(conn, 2, email="silence@exemple.fr", street="3 rue Haute", postal_code="35000",
                              city="Rennes")
        letter_only = add_business(conn, 3, street="1 rue Basse", postal_code="35000", city="Rennes")
        add_business(conn, 4)  # no way to reach it

    day0 = bootstrap(settings, clock=lambda: NOW)
    counts = plan_all(day0)
    assert counts["events"] == 4 and counts["messages"] == 3 and counts["skipped_no_channel"] == 1
    assert plan_all(day0) == {}  # rerun: nothing new
    with engine.connect() as conn:
        first = {r.business_id: r for r in conn.execute(select(M).where(M.c.step == 0))}
        enrollments = {r.business_id: r for r in conn.execute(select(E))}
    assert first[letter_only].channel == "letter"  # e-mail missing: fallback to the letter (no phone)
    assert {first[clicker].channel, first[silent].channel} == {"email"}
    # The building trades' window: 17:30 Paris.
    assert {r.due_at.astimezone(dt.UTC).hour for r in first.values()} == {16}
    # One ambassador of the same family in the same EPCI, capacity 1 a month: the others are recorded gaps
    # and name the campaign's contact.
    assert sorted(e.ambassador_id is not None for e in enrollments.values()) == [False, False, True]
    names = sorted(first[b].context["ambassador"]["name"] for b in first)
    assert names == ["Claire Le Goff", "Claire Le Goff", "Yann Le Bihan"]
    assert counts["ambassador_gaps"] == 2
    from store.journeys import ambassador_gaps

    with engine.connect() as conn:
        assert ambassador_gaps(conn, campaign_id) == [(campaign_id, "batiment", "35", 2)]
    titles = [o["title"] for o in first[clicker].context["offers"]]
    assert titles == ["Atelier devis en ligne", "Diagnostic numérique"]

    evening = bootstrap(settings, clock=lambda: NOW + dt.timedelta(hours=9))
    sent = dispatch_all(evening)
    assert sent["sent"] == 3 and smtp_sink.received == 2
    with engine.begin() as conn:
        conn.execute(Interaction.__table__.insert().values(
            business_id=clicker, message_id=first[clicker].id, campaign_id=campaign_id, kind="click",
            at=NOW + dt.timedelta(days=1), data={}))

    week = bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=7, hours=9))
    counts = plan_all(week)
    assert counts["followup_messages"] == 2 and counts["stopped_condition_not_met"] == 1
    with engine.connect() as conn:
        second = {r.business_id: r for r in conn.execute(select(M).where(M.c.step == 1))}
    assert second[clicker].status == "cancelled" and second[clicker].last_error == "condition_not_met"
    assert second[silent].status == "planned" and second[silent].channel == "email"
    assert second[letter_only].channel == "letter"
    # Same ambassador and offers along the journey.
    assert second[silent].context["ambassador"] == first[silent].context["ambassador"]
    assert plan_all(week) == {}

    # A new spec version (a changed wording) never resends a past step.
    apply_campaign(engine, load_spec(campaign_spec(title="Nouveau titre", steps=spec.model_dump()["steps"])), now=NOW)
    dispatch_all(bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=8, hours=9)))
    later = bootstrap(settings, clock=lambda: NOW + dt.timedelta(days=16, hours=9))
    counts = plan_all(later)
    assert counts["followup_messages"] == 2  # the letters of step 3 for the two still in the journey
    with engine.connect() as conn:
        per_step = conn.execute(select(M.c.business_id, M.c.step)).all()
    assert len(per_step) == len(set(per_step))
    assert sorted(s for b, s in per_step if b == silent) == [0, 1, 2]
    assert sorted(s for b, s in per_step if b == clicker) == [0, 1]


def test_paused_campaign_plans_nothing_new(settings, engine):
    from store.admin import set_campaign_status

    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    set_campaign_status(engine, "bienvenue-35", "paused", now=NOW)
    with engine.begin() as conn:
        add_business(conn, 1, email="a@exemple.fr")
    counts = plan_all(bootstrap(settings, clock=lambda: NOW))
    assert counts["events"] == 1 and counts["messages"] == 0
    with engine.begin() as conn:
        conn.execute(update(TriggerEvent.__table__).values(planned=False))
    set_campaign_status(engine, "bienvenue-35", "active", now=NOW)
    assert plan_all(bootstrap(settings, clock=lambda: NOW))["messages"] == 1
