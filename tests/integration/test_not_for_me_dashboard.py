"""Issue 16, point 2 (dashboard side): the "Ce n'est pas pour moi" answers by reason x trade family and by
reason x EPCI on the campaign page, in French words, with their CSV export and in `declic report`; every reason
of the landing page has its French label in the catalogue, so the business timeline reads French words."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import update

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import NOT_FOR_ME_REASONS
from orchestrator.core.labels import NOT_FOR_ME, label
from store.accounts import add_user
from store.models import Business
from store.report import business_timeline, campaign_by_id, report
from tests.integration.test_not_for_me import NOW, answer, journeys
from tests.integration.test_web_dashboard import PASSWORD, signed_in
from web.app import create_app

B = Business.__table__


def test_every_reason_has_a_french_label():
    assert set(NOT_FOR_ME_REASONS) <= set(NOT_FOR_ME)
    assert label("not_for_me", "pas_le_moment") == "pas le moment"
    assert label("not_for_me", "pas_le_temps") == "pas le temps"  # the first landing page's answers
    assert all("_" not in text for text in NOT_FOR_ME.values())


def seeded(settings, engine) -> tuple[int, int]:
    campaign_id, first = journeys(settings, engine, 5)
    ids = list(first)
    with engine.begin() as conn:
        # Two trades and two EPCI: a hairdresser of Val d'Ille-Aubigné, the others builders of Rennes Métropole.
        conn.execute(update(B).where(B.c.id == ids[0]).values(metier_family="beaute_bien_etre", epci_code="243500667",
                                                               commune_code="35360"))
    day = NOW + dt.timedelta(days=1)
    answer(engine, first[ids[0]], "trop_cher", day)
    answer(engine, first[ids[1]], "trop_cher", day)
    answer(engine, first[ids[1]], "trop_cher", day + dt.timedelta(hours=1))  # twice the same: counted once
    answer(engine, first[ids[2]], "trop_cher", day)
    answer(engine, first[ids[3]], "pas_le_moment", day, months=3)
    return campaign_id, ids[3]


def test_reasons_by_trade_and_epci_on_the_page_in_the_csv_and_the_report(settings, engine):
    campaign_id, paused = seeded(settings, engine)
    with engine.connect() as conn:
        r = report(engine, campaign_by_id(conn, campaign_id))
        timeline = business_timeline(conn, paused, None)
    family = [(x["reason"], x["label"], x["businesses"]) for x in r.table("not_for_me_by_family").rows]
    assert family == [("trop cher", "Bâtiment", 2), ("trop cher", "Beauté et bien-être", 1),
                      ("pas le moment", "Bâtiment", 1)]
    epci = {(x["reason"], x["label"]): x["businesses"] for x in r.table("not_for_me_by_epci").rows}
    assert epci == {("trop cher", "Rennes Métropole"): 2, ("trop cher", "CC Val d'Ille-Aubigné"): 1,
                    ("pas le moment", "Rennes Métropole"): 1}
    assert any(item.get("extra") == "pas le moment" for item in timeline)

    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    client = signed_in(create_app(bootstrap(settings)), "op@declic.fr")
    page = client.get(f"/tableau/campagnes/{campaign_id}")
    assert page.status_code == 200
    assert 'id="detail-not_for_me_by_family"' in page.text and 'id="detail-not_for_me_by_epci"' in page.text
    assert "4 réponses « Ce n'est pas pour moi »" in page.text
    assert "<script" not in page.text and "style=" not in page.text
    exported = client.get(f"/tableau/campagnes/{campaign_id}/export/not_for_me_by_epci.csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Raison", "Intercommunalité", "Entreprises", "Part des réponses de cette raison"]
    assert ["trop cher", "Rennes Métropole", "2", "66,7 %"] in rows
