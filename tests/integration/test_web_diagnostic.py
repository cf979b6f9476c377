"""The self-diagnostic (issue 16, point 5): five questions on skills and appetite shown on the landing page itself and
behind a short link, versioned answers stored with both levels, ONE next step with its price and a person; on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.links import make_token
from orchestrator.core.short_codes import short_code
from store.journeys import import_offers
from store.models import Business, Interaction
from tests.utils.outreach import business, campaign, context, enrol
from web.app import create_app

INTERACTIONS = Interaction.__table__
OFFERS = """key,title,provider,kind,families,territory,format,duration,hours,price,url
efact-35,Recevoir vos factures électroniques,CMA Bretagne,formation_courte,batiment,departement:35,sur_place,2 h,\
jeudi 18 h,gratuit,
brest,Factures électroniques à Brest,CCI,formation_courte,,epci:242900314,sur_place,1 h,lundi,gratuit,
"""
ANSWERS = {"phone": ["email", "photos", "bank"], "invoices": "accountant", "time": "none",
           "chores": ["quotes_invoices"], "trade": "by_hand"}


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def _message(engine, *, ctx=None, at=None, channel="email") -> tuple[int, int]:
    campaign_id = campaign(engine, "diag-35", "35")
    with engine.begin() as conn:
        b = business(conn, "35238")
        kw = {"at": at} if at else {}
        return b, enrol(conn, campaign_id, b, ctx=ctx, channel=channel, **kw)[1]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(select(INTERACTIONS).where(INTERACTIONS.c.kind == "diagnostic_completed")).one()


def test_the_landing_page_itself_asks_the_five_questions_in_the_trade_s_words(client, settings, engine):
    _, m = _message(engine)
    html = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}").text
    section = html[html.index('aria-labelledby="diag"'):html.index('aria-labelledby="non"')]
    assert 'action="/m/' in section and "/diagnostic" in section
    assert section.count("<fieldset") == 5 and section.count("<legend>") == 5
    assert "Vos devis, vous les faites…" in section  # the question of the bâtiment family
    assert "Vos factures, qui les reçoit ?" in section and "par semaine" in section
    assert section.count('type="checkbox"') == 10 and section.count('type="radio"') == 9
    ids = re.findall(r'id="(diag-[^"]+)"', section)
    assert all(f'for="{i}"' in section for i in ids if not i.endswith("-hint")) and len(set(ids)) == len(ids)
    assert "<script" not in html and "style=" not in html


def test_answers_are_stored_versioned_with_both_levels_and_one_next_step_names_a_person_and_a_price(
    client, settings, engine
):
    b, m = _message(engine)
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    page = client.get(f"/m/{token}/diagnostic")
    assert "Vos devis, vous les faites…" in page.text
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(page.text), **ANSWERS})
    assert reply.status_code == 200
    # No time this week: the free offer, not the 20 € one, and the ambassador the business was matched to.
    text = reply.text
    assert text.count("<h3>") == 1 and "Atelier : vos devis et factures sur ordinateur" in text
    assert "Prix : <strong>gratuit</strong>" in text and "Claire Le Goff" in text
    assert "Être trouvé sur internet" not in text
    row = stored(engine)
    assert row.data["version"] == 2 and row.data["source"] == "landing" and row.data["family"] == "batiment"
    assert row.data["answers"] == {"phone": ["email", "photos", "bank"], "invoices": "accountant", "time": "none",
                                   "chores": ["quotes_invoices"], "trade": "by_hand"}
    assert (row.data["score"], row.data["maturity"]) == (2, "on_the_way")
    assert (row.data["appetite_score"], row.data["appetite"]) == (1, "low")
    assert row.data["next_step"] == {"kind": "offer", "title": "Atelier : vos devis et factures sur ordinateur",
                                     "price": "gratuit", "person": "Claire Le Goff",
                                     "why": "Vous voulez faire vos devis et vos factures sans papier."}
    with engine.connect() as conn:
        assert conn.execute(select(Business.__table__.c.digital_maturity)
                            .where(Business.__table__.c.id == b)).scalar() == 2


def test_an_offer_of_the_registry_that_fits_the_answers_can_be_the_next_step(client, settings, engine, tmp_path):
    path = tmp_path / "offres.csv"
    path.write_text(OFFERS, encoding="utf-8")
    assert import_offers(engine, path, now=dt.datetime.now(dt.UTC))[0] == 2
    _, m = _message(engine, ctx=context(offers=[]))
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    page = client.get(f"/m/{token}/diagnostic")
    answers = dict(ANSWERS, invoices="nobody", time="one_hour")
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(page.text), **answers})
    assert reply.status_code == 200
    assert "Recevoir vos factures électroniques" in reply.text and "Brest" not in reply.text
    assert "Prix : <strong>gratuit</strong>" in reply.text and "Claire Le Goff" in reply.text
    assert stored(engine).data["next_step"]["title"] == "Recevoir vos factures électroniques"


def test_without_any_offer_the_next_step_is_a_free_call_with_the_person(client, settings, engine):
    _, m = _message(engine, ctx=context(offers=[]))
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    page = client.get(f"/m/{token}/diagnostic")
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(page.text), **ANSWERS})
    assert "Un appel de 15 minutes avec votre contact" in reply.text and "Claire Le Goff" in reply.text
    assert stored(engine).data["next_step"]["kind"] == "call"


def test_an_unknown_code_or_a_missing_answer_asks_again_and_keeps_what_was_ticked(client, settings, engine):
    _, m = _message(engine)
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    csrf = csrf_of(client.get(f"/m/{token}/diagnostic").text)
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf, **dict(ANSWERS, time="toujours")})
    assert reply.status_code == 400 and "Répondez à chaque question" in reply.text
    assert 'value="bank" checked' in reply.text and 'aria-describedby="diag-error"' in reply.text
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": "faux", **ANSWERS})
    assert reply.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(INTERACTIONS)).all() == []


def test_the_short_diagnostic_link_opens_the_questions_and_the_answers_say_where_they_came_from(
    client, settings, engine
):
    _, m = _message(engine, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3), channel="letter")
    reply = client.get(f"/s/{short_code(settings.resolved_secret, m)}/diagnostic")
    assert reply.status_code == 200 and reply.url.path.endswith("/diagnostic")
    assert "Vos devis, vous les faites…" in reply.text and 'name="source" value="short"' in reply.text
    reply = client.post(reply.url.path, data={"csrf": csrf_of(reply.text), "source": "short", **ANSWERS})
    assert reply.status_code == 200 and "Claire Le Goff" in reply.text
    with engine.connect() as conn:
        rows = conn.execute(select(INTERACTIONS).order_by(INTERACTIONS.c.id)).all()
    assert [(r.kind, r.data.get("to") if r.kind == "click" else r.data["source"]) for r in rows] == [
        ("click", "diagnostic"), ("diagnostic_completed", "short")]


def test_an_unknown_or_old_short_diagnostic_link_leads_nowhere(client, settings, engine):
    _, old = _message(engine, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=400), channel="letter")
    for code in (short_code(settings.resolved_secret, old), short_code(settings.resolved_secret, 999_999), "0O1lI"):
        reply = client.get(f"/s/{code}/diagnostic", follow_redirects=False)
        assert reply.status_code == 404 and "ien inconnu ou expiré" in reply.text
    with engine.connect() as conn:
        assert conn.execute(select(INTERACTIONS)).all() == []


def test_the_barometer_reads_the_new_answers_and_the_old_ones_alike(client, settings, engine):
    from orchestrator.core.diagnostic import stored_levels
    from store.barometer import barometer_answers

    b, m = _message(engine)
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(client.get(f"/m/{token}/diagnostic").text),
                                                **ANSWERS})
    with engine.begin() as conn:  # an answer of the first diagnostic (five yes/no questions), stored before
        conn.execute(INTERACTIONS.insert().values(
            business_id=b, kind="diagnostic_completed", at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
            data={"score": 4, "answers": {"email_pro": True}, "offer": None, "source": "landing"}))
        rows = conn.execute(select(INTERACTIONS.c.data).where(INTERACTIONS.c.kind == "diagnostic_completed")
                            .order_by(INTERACTIONS.c.id)).scalars().all()
        scores = sorted(a.score for a in barometer_answers(conn, {"departements": ["35"]}) if a.day)
    levels = [stored_levels(d) for d in rows]
    assert [(lv.version, lv.maturity, lv.appetite) for lv in levels] == [(2, "on_the_way", "low"),
                                                                        (1, "well_equipped", None)]
    assert scores == [2, 4]
