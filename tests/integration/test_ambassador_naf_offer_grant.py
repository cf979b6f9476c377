"""Issue 13, point 2, on SQLite and PostgreSQL: an ambassador is matched by NAF sub-class first, then trade family,
then an adviser; an offer's grant is a field and a sentence of its own, never a price."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.journeys import import_ambassadors, import_offers
from store.models import Ambassador, Business, Enrollment, Message, Offer, TriggerEvent
from templates.preview import sample_context
from templates.render import library
from tests.utils.factories import campaign_spec

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Paris
B, E, M = Business.__table__, Enrollment.__table__, Message.__table__

# The butcher serves the baker's own commune, the baker the whole département: the trade wins over distance.
AMBASSADORS = """key,name,metier,families,naf,communes,epci,departements,channels,phone,email,commune,monthly_capacity
bouchere,Anne Bouchard,bouchère,alimentation,47.22Z|10.13B,35238,,,phone,+33611111111,,Rennes,5
boulanger,Paul Fournil,boulanger,alimentation,1071C|47.24Z,,,35,phone,+33622222222,,Vitré,5
cabinet,Cabinet Armor Conseil,expert-comptable,*,,35238,,,email|phone,+33299000000,contact@armor.example,Rennes,5
naf-inconnu,X,,alimentation,99.99Z,35238,,,phone,0600000000,,,1
naf-hors-famille,Y,,batiment,10.71C,35238,,,phone,0600000000,,,1
"""
OFFERS = """key,title,provider,kind,families,territory,format,duration,hours,price,grant,url
cheque,Chèque numérique,Région,financement,,region:53,a_distance,15 min,en ligne,,"{grant}",
ancien,Chèque bis,Région,financement,,region:53,a_distance,15 min,en ligne,50 % des dépenses jusqu'à 1 500 €,,
rien,Atelier,CCI,diagnostic,,region:53,a_distance,1 h,lundi,,,
""".format(grant="La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 €")


def add_business(conn, i: int, naf: str, family: str) -> int:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    business_id = conn.execute(B.insert().values(
        siret=f"{i:014d}", siren=f"{i:09d}", name=f"Entreprise {i}", naf_code=naf, metier_family=family,
        commune_code="35238", epci_code="243500139", departement_code="35", region_code="53", state="active",
        do_not_contact=False, phone_consent=False, email=f"e{i}@exemple.fr", created_at=now,
        updated_at=now)).inserted_primary_key[0]
    conn.execute(TriggerEvent.__table__.insert().values(
        source="test", external_id=f"ev-{i}", type="creation", business_id=business_id, siret=f"{i:014d}",
        occurred_on=dt.date(2026, 11, 30), received_at=now, status="accepted", planned=False, payload={}))
    return business_id


def test_imports_check_naf_codes_and_refuse_a_grant_written_as_a_price(engine):
    imported, rejects = import_ambassadors(engine, AMBASSADORS, now=dt.datetime.now(dt.UTC))
    assert imported == 3
    reasons = {(r.line, r.field): r.reason for r in rejects}
    assert "code NAF inconnu" in reasons[(5, "naf")]
    assert "n'est pas de la famille batiment" in reasons[(6, "naf")]
    imported, rejects = import_offers(engine, OFFERS, now=dt.datetime.now(dt.UTC))
    assert imported == 1
    reasons = {(r.line, r.field): r.reason for r in rejects}
    assert "est une aide, pas un prix" in reasons[(3, "price")]
    assert "ni prix ni aide" in reasons[(4, "price")]
    with engine.connect() as conn:
        nafs = dict(conn.execute(select(Ambassador.__table__.c.key, Ambassador.__table__.c.nafs)).all())
        offer = conn.execute(select(Offer.__table__)).one()
    assert nafs == {"bouchere": ["47.22Z", "10.13B"], "boulanger": ["10.71C", "47.24Z"], "cabinet": []}
    assert offer.price is None and offer.grant.startswith("La Région rembourse la moitié")


def test_baker_meets_the_baker_butcher_shop_the_butcher_and_the_plumber_the_adviser(settings, engine):
    import_ambassadors(engine, AMBASSADORS, now=dt.datetime.now(dt.UTC))
    import_offers(engine, OFFERS, now=dt.datetime.now(dt.UTC))
    apply_campaign(engine, load_spec(campaign_spec(families=("alimentation", "batiment"))), now=NOW)
    with engine.begin() as conn:
        baker = add_business(conn, 1, "10.71C", "alimentation")
        caterer = add_business(conn, 2, "10.13B", "alimentation")  # charcuterie: the butcher practises it
        grocer = add_business(conn, 3, "47.11B", "alimentation")  # no ambassador of its sub-class
        plumber = add_business(conn, 4, "43.22A", "batiment")  # no peer of the building trades
    counts = plan_all(bootstrap(settings, clock=lambda: NOW))
    assert counts["messages"] == 4
    with engine.connect() as conn:
        keys = dict(conn.execute(select(Ambassador.__table__.c.id, Ambassador.__table__.c.key)).all())
        matched = {r.business_id: keys.get(r.ambassador_id) for r in conn.execute(select(E))}
        contexts = {r.business_id: r.context for r in conn.execute(select(M))}
    assert matched[baker] == "boulanger"
    assert matched[caterer] == "bouchere"
    assert matched[grocer] == "bouchere"  # same family, nearer than the baker
    assert matched[plumber] == "cabinet"
    assert contexts[plumber]["ambassador"]["role"] == "conseiller"
    assert contexts[baker]["ambassador"]["role"] == "pair"
    # The grant reaches the message as its own field, and reads as its own sentence.
    offer = contexts[baker]["offers"][0]
    assert offer["grant"].startswith("La Région rembourse") and offer["price"] is None
    lib = library()
    body = lib.render(lib.resolve("email", "creation", "alimentation"), dict(contexts[baker], links=sample_context(
        "alimentation")["links"])).body
    assert "La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 €." in body
    assert "Prix" not in body.split("Chèque numérique")[1].split("\n")[0]
    assert "Paul Fournil" in body
