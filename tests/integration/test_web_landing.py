"""The owner's landing page and its forms (callback, not for me, diagnostic), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.core.links import make_token
from store.models import Business, CallTask, Consent, Interaction, Notice
from tests.utils.outreach import business, campaign, enrol
from web.app import create_app

TASKS = CallTask.__table__
INTERACTIONS = Interaction.__table__
NOTICES = Notice.__table__


@pytest.fixture
def seeded(engine):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        b = business(conn, "35238")
        _, m = enrol(conn, campaign_id, b)
    return campaign_id, b, m


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def kinds(engine):
    with engine.connect() as conn:
        return [r.kind for r in conn.execute(select(INTERACTIONS).order_by(INTERACTIONS.c.id))]


def test_click_then_landing_shows_ambassador_offers_and_forms(client, settings, engine, seeded):
    _, _, m = seeded
    reply = client.get(f"/r/{make_token(settings.resolved_secret, 'r', m, now=dt.datetime.now(dt.UTC))}")
    assert reply.status_code == 200 and reply.url.path.startswith("/m/")
    html = reply.text
    assert "Claire Le Goff" in html and "Atelier : vos devis et factures sur ordinateur" in html
    assert "gratuit" in html and "20 €" in html
    assert 'for="phone"' in html and 'id="phone"' in html  # labelled fields
    assert "Rappelez-moi" in html and "Ce n'est pas pour moi" in html
    assert "<script" not in html
    assert kinds(engine) == ["click"]


def notices(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(NOTICES).order_by(NOTICES.c.id)).all()


def test_callback_creates_a_task_for_the_ambassador_and_notifies_them(
    client, settings, engine, smtp_sink, seeded
):
    campaign_id, b, m = seeded
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    url = str(page.url.path) + "/rappel"
    reply = client.post(
        url,
        data={
            "csrf": csrf_of(page.text),
            "phone": "06 12 34 56 78",
            "slot": "matin",
            "note": "Plutôt le mardi",
        },
    )
    assert reply.status_code == 200 and "C'est noté" in reply.text
    with engine.connect() as conn:
        task = conn.execute(select(TASKS)).one()
        biz = conn.execute(select(Business.__table__).where(Business.__table__.c.id == b)).one()
    assert task.assignee == "ambassador:7" and task.phone == "+33612345678" and task.status == "open"
    assert task.message_id == m and task.outcome_note == "Plutôt le mardi"
    # The consent is specific to the campaign's owner (issue 15), no longer a global flag on the business.
    assert biz.phone == "+33612345678" and biz.phone_consent is False
    with engine.connect() as conn:
        consent = conn.execute(select(Consent.__table__)).one()
    assert (consent.business_id, consent.purpose, consent.phone) == (b, "call", "+33612345678")
    assert kinds(engine) == ["callback_request"]
    # The ambassador's e-mail is a notice queued with the task (the web sends nothing itself) ...
    (notice,) = notices(engine)
    assert (notice.kind, notice.recipient, notice.status) == ("callback_request", "claire@exemple.fr", "planned")
    assert (notice.business_id, notice.campaign_id) == (b, campaign_id) and notice.cause_key.startswith(
        f"callback_request:{task.id}:")
    assert smtp_sink.received == 0
    # ... that the dispatcher sends.
    dispatch_all(bootstrap(settings))
    assert smtp_sink.received == 1
    mail = smtp_sink.messages[0]
    assert mail["To"] == "claire@exemple.fr" and mail["Subject"] == "À rappeler : Plomberie Durand"
    assert mail["Message-ID"] == f"<declic.rappel.{notice.id}@127.0.0.1>"
    body = mail.get_content().replace("\r\n", "\n")
    assert body.startswith("Bonjour Claire Le Goff,\n\nPlomberie Durand (plombier, Rennes) demande un rappel.\n"
                           "Numéro : 06 12 34 56 78\nMoment préféré : le matin (10 h - 13 h), à partir du ")
    assert body.endswith(" à 10 h.\nSon message : « Plutôt le mardi »\n\nVotre liste d'appels : "
                         "http://127.0.0.1:8000/tableau/appels\n\nMerci pour votre aide.\nL'équipe Déclic\n")
    assert [n.status for n in notices(engine)] == ["sent"]
    dispatch_all(bootstrap(settings))
    assert smtp_sink.received == 1


def test_callback_asked_twice_keeps_one_task_and_one_notice(client, settings, engine, seeded):
    _, _, m = seeded
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    for slot in ("matin", "soir"):
        client.post(
            page.url.path + "/rappel", data={"csrf": csrf_of(page.text), "phone": "0612345678", "slot": slot}
        )
    with engine.connect() as conn:
        assert len(conn.execute(select(TASKS)).all()) == 1
    assert [n.kind for n in notices(engine)] == ["callback_request"]


def test_callback_with_a_bad_number_says_why_and_stores_nothing(client, settings, engine, seeded):
    _, _, m = seeded
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    reply = client.post(
        page.url.path + "/rappel", data={"csrf": csrf_of(page.text), "phone": "12", "slot": ""}
    )
    assert reply.status_code == 400
    assert "Ce numéro ne semble pas valide" in reply.text and "Choisissez un moment" in reply.text
    assert 'aria-invalid="true"' in reply.text
    assert kinds(engine) == []


def test_forms_refuse_a_missing_or_foreign_csrf_token(client, settings, engine, seeded):
    campaign_id, _, m = seeded
    with engine.begin() as conn:
        other = business(conn, "35238", name="Autre")
        _, m2 = enrol(conn, campaign_id, other, trigger="first_hire")
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    other_page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m2, now=dt.datetime.now(dt.UTC))}")
    for csrf in ("", "forged", csrf_of(other_page.text)):
        reply = client.post(page.url.path + "/pas-pour-moi", data={"csrf": csrf, "reason": "pas_utile"})
        assert reply.status_code == 403
    assert kinds(engine) == []


def test_not_for_me_keeps_the_reason(client, settings, engine, seeded):
    _, _, m = seeded
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    reply = client.post(
        page.url.path + "/pas-pour-moi",
        data={"csrf": csrf_of(page.text), "reason": "deja_equipe", "detail": "J'ai un comptable"},
    )
    assert reply.status_code == 200 and "Merci pour votre réponse" in reply.text
    with engine.connect() as conn:
        row = conn.execute(select(INTERACTIONS)).one()
    assert row.kind == "not_for_me" and row.data == {"reason": "deja_equipe", "detail": "J'ai un comptable"}


def test_diagnostic_stores_maturity_counts_a_conversion_and_suggests_the_fitting_offer(
    client, settings, engine, seeded
):
    _, b, m = seeded
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    page = client.get(f"/m/{token}/diagnostic")
    assert page.text.count('type="radio"') == 9 and page.text.count('type="checkbox"') == 10
    answers = {
        "phone": ["email", "photos"],
        "invoices": "accountant",
        "time": "one_hour",
        "chores": ["online_visibility"],
        "trade": "partly",
    }
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(page.text), **answers})
    assert reply.status_code == 200
    assert "en route" in reply.text
    assert "Être trouvé sur internet : votre fiche sur la carte" in reply.text  # the offer for "online_visibility"
    with engine.connect() as conn:
        biz = conn.execute(select(Business.__table__).where(Business.__table__.c.id == b)).one()
        row = conn.execute(select(INTERACTIONS)).one()
    assert biz.digital_maturity == 3
    assert row.kind == "diagnostic_completed" and row.data["score"] == 3 and row.data["version"] == 2


def test_diagnostic_with_a_missing_answer_asks_again(client, settings, engine, seeded):
    _, _, m = seeded
    token = make_token(settings.resolved_secret, "m", m, now=dt.datetime.now(dt.UTC))
    page = client.get(f"/m/{token}/diagnostic")
    reply = client.post(f"/m/{token}/diagnostic", data={"csrf": csrf_of(page.text), "invoices": "accountant"})
    assert reply.status_code == 400 and "Répondez à chaque question" in reply.text
    assert kinds(engine) == []


@pytest.mark.parametrize("purpose", ["r", "u"])
def test_landing_refuses_tokens_of_another_purpose_or_forged(client, settings, seeded, purpose):
    _, _, m = seeded
    now = dt.datetime.now(dt.UTC)
    assert client.get(f"/m/{make_token(settings.resolved_secret, purpose, m, now=now)}").status_code == 404
    assert client.get(f"/m/{make_token('another-secret-0123456789', 'm', m, now=now)}").status_code == 404
    assert (
        client.post(
            f"/m/{make_token(settings.resolved_secret, purpose, m, now=dt.datetime.now(dt.UTC))}/rappel",
            data={"phone": "0612345678", "slot": "matin"},
        ).status_code
        == 404
    )
