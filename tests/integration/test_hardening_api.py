"""Issue 14 (findings 7, 8, 12, 16): hostile bodies, bad items, odd query values, security headers, the
callback form's daily limit and foreign phone numbers, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from orchestrator.core.links import make_token
from store.admin import add_partner
from store.models import CallTask, Notice, TriggerEvent
from tests.utils.factories import creation_item
from tests.utils.outreach import business, campaign, enrol
from web.app import create_app

EVENTS = TriggerEvent.__table__


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


@pytest.fixture
def token(engine):
    return add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(EVENTS)).scalar()


# Finding 7: authenticate first, cap the body, the payload and the batch.

def test_the_token_is_checked_before_the_body_is_read(client, engine):
    for headers in ({}, auth("dcl_not-a-token")):
        # Parsed before the token was checked, this body would be a 422 (or cost a parse of a huge body).
        reply = client.post("/api/v1/events", content=b"{not json",
                            headers=headers | {"content-type": "application/json"})
        assert reply.status_code == 401
    assert stored(engine) == 0


def test_a_body_over_the_cap_is_413_in_french(settings, token, engine):
    settings.max_body_bytes = 4096
    with TestClient(create_app(bootstrap(settings))) as client:
        big = {"events": [creation_item("big", email=None) | {"payload": {"note": "x" * 5000}}]}
        reply = client.post("/api/v1/events", json=big, headers=auth(token))
        assert reply.status_code == 413 and "trop volumineuse" in reply.json()["detail"]
        # Without a Content-Length (chunked), the body is counted as it arrives.
        chunks = (b'{"events": [' if i == 0 else b'"' + b"x" * 1000 + b'",' for i in range(10))
        reply = client.post("/api/v1/events", content=chunks, headers=auth(token))
        assert reply.status_code == 413 and "trop volumineuse" in reply.json()["detail"]
    assert stored(engine) == 0


def test_payload_too_big_or_too_deep_is_rejected_and_the_rest_goes_in(client, token, engine):
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["n"] = {}
        node = node["n"]
    items = [creation_item("ok"), creation_item("big") | {"payload": {"note": "x" * 50_000}},
             creation_item("deep") | {"payload": deep}]
    body = client.post("/api/v1/events", json={"events": items}, headers=auth(token)).json()
    assert [i["status"] for i in body["items"]] == ["accepted", "rejected", "rejected"]
    assert body["items"][1]["field"] == "payload" and "trop volumineux" in body["items"][1]["reason"]
    assert body["items"][2]["field"].startswith("payload") and "imbriqu" in body["items"][2]["reason"]
    assert stored(engine) == 1


def test_a_batch_over_1000_items_is_a_short_error_that_does_not_echo_it(client, token, engine):
    items = [creation_item(f"b-{i}", email=None) for i in range(1001)]
    reply = client.post("/api/v1/events", json={"events": items}, headers=auth(token))
    assert reply.status_code == 422 and len(reply.content) < 500
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["body", "events"] and "au plus 1000" in error["msg"]
    assert "b-0" not in reply.text
    assert stored(engine) == 0


def test_validation_errors_are_french_and_never_echo_the_input(client, token):
    reply = client.post("/api/v1/events", json={"events": "x" * 300}, headers=auth(token))
    assert reply.status_code == 422 and "liste" in reply.json()["detail"][0]["msg"]
    assert "xxxx" not in reply.text


# Finding 8: one bad item never fails the batch.

def test_each_bad_item_gets_its_own_reject_and_the_good_ones_are_stored(client, token, engine):
    good = creation_item("good-1")
    nul_name = creation_item("nul-1")
    nul_name["business"]["name"] = "Plomberie\x00Durand"
    items = [
        good,
        creation_item("x") | {"external_id": 12345},
        creation_item("x") | {"external_id": 1.5},
        creation_item("x") | {"external_id": ["a"]},
        creation_item("x") | {"external_id": True},
        nul_name,
        creation_item("nul\x00id"),
        creation_item("nan-1") | {"payload": {"score": float("nan")}},
        creation_item("inf-1") | {"payload": {"list": [1, float("inf")]}},
        "pas un objet",
        creation_item("sur\ud800id"),  # a lone surrogate: not UTF-8, refused and never echoed
        creation_item("sur-2") | {"business": {"name": "Plomberie \udc00"}},
    ]
    # json.dumps writes NaN and Infinity, as a careless partner's encoder would.
    raw = json.dumps({"events": items})
    reply = client.post("/api/v1/events", content=raw, headers=auth(token) | {"content-type": "application/json"})
    assert reply.status_code == 200
    body = reply.json()
    statuses = [(i["status"], i["field"]) for i in body["items"]]
    assert statuses == [
        ("accepted", None),
        ("rejected", "external_id"), ("rejected", "external_id"), ("rejected", "external_id"),
        ("rejected", "external_id"),
        ("rejected", "business.name"),
        ("rejected", "external_id"),
        ("rejected", "payload.score"),
        ("rejected", "payload.list.1"),
        ("rejected", "item"),
        ("rejected", "external_id"), ("rejected", "business.name"),
    ]
    assert body["items"][10]["external_id"] is None and body["items"][11]["external_id"] == "sur-2"
    assert body["items"][1]["reason"] == "un texte est attendu" and body["items"][1]["external_id"] is None
    assert "caractère nul" in body["items"][5]["reason"] and body["items"][5]["external_id"] == "nul-1"
    assert "NaN" in body["items"][7]["reason"]
    assert "UTF-16" in body["items"][10]["reason"]
    assert body["accepted"] == 1 and body["rejected"] == 11
    assert stored(engine) == 1


def test_a_foreign_contact_phone_is_rejected_with_a_french_reason(client, token, engine):
    foreign = creation_item("uk-1")
    foreign["contact"] = {"phone": "+44 20 7946 0958"}
    overseas = creation_item("re-1")
    overseas["contact"] = {"phone": "0692 12 34 56"}
    body = client.post("/api/v1/events", json={"events": [foreign, overseas]}, headers=auth(token)).json()
    assert [(i["status"], i["field"]) for i in body["items"]] == [("rejected", "contact.phone"), ("accepted", None)]
    assert "numéro français" in body["items"][0]["reason"]


# Finding 16: odd query values and tokens are client errors.

def test_out_of_range_since_and_after_are_422_in_french(client, token):
    reply = client.get("/api/v1/events", params={"since": "9999-12-31T23:59:59-23:59"}, headers=auth(token))
    assert reply.status_code == 422 and "hors limites" in reply.json()["detail"][0]["msg"]
    reply = client.get("/api/v1/events", params={"after": "9223372036854775808"}, headers=auth(token))
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["query", "after"]
    assert "inférieur ou égal" in reply.json()["detail"][0]["msg"]
    assert client.get("/api/v1/events", params={"after": "2147483647"}, headers=auth(token)).json() == []


def test_a_non_ascii_hook_token_is_403(client, settings):
    settings.hooks_token = "hook-token-0123456789"
    reply = client.post("/hooks/sms/replies?token=%C3%A9", json=[])
    assert reply.status_code == 403 and reply.json()["detail"] == "jeton de rappel faux"


# Finding 12: security headers everywhere.

def test_every_answer_carries_the_security_headers(client, token):
    for path in ("/connexion", "/api/v1/events", "/static/site.css", "/healthz", "/docs", "/nulle-part"):
        reply = client.get(path, headers=auth(token))
        csp = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in reply.headers
    assert "script-src 'self';" in client.get("/connexion").headers["content-security-policy"]
    docs = client.get("/docs").text
    assert re.findall(r"<script>", docs) == [] and '<script src="/static/docs.js">' in docs
    assert client.get("/static/docs.js").status_code == 200


def test_hsts_when_served_over_https(settings, engine):
    settings.base_url = "https://declic.example"
    with TestClient(create_app(bootstrap(settings)), base_url="https://declic.example") as c:
        assert c.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


# Finding 16: the callback form.

@pytest.fixture
def landing(client, settings, engine):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        b = business(conn, "35238")
        _, m = enrol(conn, campaign_id, b)
    page = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return page.url.path + "/rappel", csrf


def test_a_second_callback_request_the_same_day_sends_no_new_mail(client, settings, engine, smtp_sink, landing):
    url, csrf = landing
    first = client.post(url, data={"csrf": csrf, "phone": "06 12 34 56 78", "slot": "matin"})
    assert "C'est noté" in first.text
    for _ in range(3):
        again = client.post(url, data={"csrf": csrf, "phone": "06 12 34 56 79", "slot": "soir"})
        assert again.status_code == 200 and "déjà enregistrée" in again.text
    # The ambassador's e-mail: one notice, sent once by the dispatcher.
    dispatch_all(bootstrap(settings))
    assert smtp_sink.received == 1
    with engine.connect() as conn:
        (task,) = conn.execute(select(CallTask.__table__)).all()
        assert conn.execute(select(Notice.status)).scalars().all() == ["sent"]
    assert task.phone == "+33612345678"


def test_the_callback_form_refuses_a_foreign_number(client, engine, landing):
    url, csrf = landing
    reply = client.post(url, data={"csrf": csrf, "phone": "+44 20 7946 0958", "slot": "matin"})
    assert reply.status_code == 400 and "numéro français" in reply.text
    with engine.connect() as conn:
        assert conn.execute(select(CallTask.__table__)).all() == []
