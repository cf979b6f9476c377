"""The partner API over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from store.admin import add_partner
from store.models import Business, TriggerEvent
from tests.utils.factories import creation_item, siret


def post(base, token, items):
    return requests.post(f"{base}/api/v1/events", json={"events": items},
                         headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=10)


def count_events(engine, external_id=None):
    q = select(func.count()).select_from(TriggerEvent.__table__)
    if external_id:
        q = q.where(TriggerEvent.__table__.c.external_id == external_id)
    with engine.connect() as conn:
        return conn.execute(q).scalar()


def test_missing_or_wrong_token_is_401(engine, live_server):
    add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    assert post(live_server, None, [creation_item("a")]).status_code == 401
    reply = post(live_server, "dcl_not-a-token", [creation_item("a")])
    assert reply.status_code == 401
    assert count_events(engine) == 0


def test_duplicate_external_id_is_stored_once(engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    item = creation_item("bge-0001")
    first = post(live_server, token, [item]).json()
    again = post(live_server, token, [item, item]).json()
    assert first["items"][0]["status"] == "accepted"
    assert [i["status"] for i in again["items"]] == ["duplicate", "duplicate"]
    assert count_events(engine, "bge-0001") == 1


def test_bad_siret_is_rejected_with_its_field_and_the_rest_goes_in(engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    good = creation_item("ok-1")
    valid = siret()
    # Changing one digit always breaks the Luhn key.
    bad = creation_item("bad-1", siret_value=valid[:-1] + str((int(valid[-1]) + 1) % 10))
    body = post(live_server, token, [good, bad]).json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    rejected = body["items"][1]
    assert rejected["status"] == "rejected" and rejected["field"] == "siret"
    assert "SIRET" in rejected["reason"]
    assert count_events(engine) == 1


def test_event_details_create_the_business_with_family_and_territory(engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    item = creation_item("b-1", commune="75101", naf="10.71C")
    assert post(live_server, token, [item]).json()["accepted"] == 1
    with engine.connect() as conn:
        b = conn.execute(select(Business.__table__).where(Business.__table__.c.siret == item["siret"])).one()
    assert (b.metier_family, b.commune_code, b.epci_code, b.departement_code, b.region_code) == (
        "alimentation", "75056", "200054781", "75", "11")
    assert b.email == "patron@exemple.fr" and b.email_source == "bge"


def test_type_outside_token_scope_is_rejected(engine, live_server):
    token = add_partner(engine, "urssaf", ["first_hire"], now=dt.datetime.now(dt.UTC))
    body = post(live_server, token, [creation_item("c-1")]).json()
    assert body["items"][0]["status"] == "rejected" and body["items"][0]["field"] == "type"
    assert count_events(engine) == 0


def test_concurrent_posts_of_the_same_event_store_it_once(engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    item = creation_item("race-1")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: post(live_server, token, [item]).json(), range(8)))
    statuses = sorted(r["items"][0]["status"] for r in replies)
    assert statuses.count("accepted") == 1 and statuses.count("duplicate") == 7
    assert count_events(engine, "race-1") == 1


def test_openapi_docs_are_served(live_server):
    assert requests.get(f"{live_server}/docs", timeout=5).status_code == 200
    schema = requests.get(f"{live_server}/openapi.json", timeout=5).json()
    assert "/api/v1/events" in schema["paths"]


def test_event_outside_token_territory_is_rejected_and_stage_follows_accepted_events(engine, live_server):
    token = add_partner(engine, "bge-35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    inside = creation_item("t-in", commune="35238")
    outside = creation_item("t-out", commune="29019")  # Brest, Finistère
    body = post(live_server, token, [inside, outside]).json()
    assert [i["status"] for i in body["items"]] == ["accepted", "rejected"]
    assert body["items"][1]["field"] == "commune_code" and "territoire" in body["items"][1]["reason"]
    assert count_events(engine) == 1
    with engine.connect() as conn:
        stage = conn.execute(select(Business.__table__.c.lifecycle_stage)
                             .where(Business.__table__.c.siret == inside["siret"])).scalar()
    assert stage == "creation"


def test_partner_lists_its_own_submissions_since_a_date(engine, live_server):
    import datetime as dt

    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    other = add_partner(engine, "adie", ["creation"], now=dt.datetime.now(dt.UTC))
    post(live_server, token, [creation_item("mine-1"), creation_item("mine-2")])
    post(live_server, other, [creation_item("theirs-1")])
    headers = {"Authorization": f"Bearer {token}"}
    today = dt.date.today().isoformat()
    listed = requests.get(f"{live_server}/api/v1/events", params={"since": today}, headers=headers, timeout=10)
    assert listed.status_code == 200
    assert [e["external_id"] for e in listed.json()] == ["mine-1", "mine-2"]
    assert all(e["status"] == "accepted" for e in listed.json())
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    later = requests.get(f"{live_server}/api/v1/events", params={"since": tomorrow}, headers=headers, timeout=10)
    assert later.json() == []
