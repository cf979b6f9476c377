"""Tokens cannot be forged, swapped or replayed for another purpose; sessions cannot be forged; cookies
carry the right flags. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.links import make_token
from store.models import Interaction, Suppression
from tests.utils.outreach import seed_funnel
from web.app import create_app


@pytest.fixture
def client(settings, engine):
    with TestClient(create_app(bootstrap(settings))) as c:
        yield c


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def test_forged_tampered_and_foreign_tokens_are_refused_and_record_nothing(client, settings, engine):
    tenant = seed_funnel(
        engine, treatment=2, holdout=0, clicks=0, responses=0, conversions_t=0, conversions_h=0
    )
    m = tenant.message_ids[0]
    secret = settings.resolved_secret
    before = count(engine, Interaction)
    good = make_token(secret, "r", m, now=dt.datetime.now(dt.UTC))
    payload, _, signature = good.rpartition(".")
    forged = [
        make_token("another-secret-0123456789abcdef", "r", m, now=dt.datetime.now(dt.UTC)),  # signed with another key
        payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:],  # signature altered
        URLSafeTimedSerializer(secret, salt="another.salt").dumps(["r", m]),  # right key, wrong salt
        URLSafeTimedSerializer(secret, salt="declic.links").dumps(["r", str(m)]),  # id not an integer
        "not-a-token",
        "",
    ]
    for token in forged:
        for path in (f"/r/{token}", f"/m/{token}", f"/u/{token}"):
            if path.endswith("/"):
                continue
            assert client.get(path, follow_redirects=False).status_code == 404, path
        assert client.post(f"/u/{token}").status_code in (404, 405)
    # A token of one purpose never works for another (a click link cannot unsubscribe, and so on).
    for purpose, paths in (
        ("r", ("/m/{t}", "/u/{t}")),
        ("m", ("/r/{t}", "/u/{t}")),
        ("u", ("/r/{t}", "/m/{t}")),
    ):
        token = make_token(secret, purpose, m, now=dt.datetime.now(dt.UTC))
        for p in paths:
            assert client.get(p.format(t=token), follow_redirects=False).status_code == 404
    assert client.post(f"/u/{make_token(secret, 'r', m, now=dt.datetime.now(dt.UTC))}").status_code == 404
    assert count(engine, Interaction) == before and count(engine, Suppression) == 0


def test_expired_click_tokens_are_refused(client, settings, engine):
    tenant = seed_funnel(
        engine, treatment=1, holdout=0, clicks=0, responses=0, conversions_t=0, conversions_h=0
    )
    signed = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)  # the web app reads it on the system clock
    old = make_token(settings.resolved_secret, "r", tenant.message_ids[0], now=signed)
    reply = client.get(f"/r/{old}", follow_redirects=False)
    assert reply.status_code == 404 and "expiré" in reply.text


def test_tokens_carry_no_personal_data(settings):
    token = make_token(settings.resolved_secret, "m", 123456, now=dt.datetime.now(dt.UTC))
    import base64
    import json

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # A purpose, the signing time, an opaque id and the signature: no e-mail, no SIRET, no name.
    assert raw[:1] == b"m" and int.from_bytes(raw[5:-16], "big") == 123456 and len(raw) == 1 + 4 + 3 + 16
    # Tokens of the earlier format (links already sent) carried the same: a purpose and an id.
    from orchestrator.core.links import _serializer

    body = _serializer(settings.resolved_secret).dumps(["m", 123456]).split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == ["m", 123456]


def test_a_forged_session_cookie_is_ignored(client, engine):
    import base64
    import json

    seed_funnel(engine, treatment=1, holdout=0)
    fake = base64.b64encode(json.dumps({"uid": 1, "csrf": "x"}).encode()).decode() + ".forged.signature"
    client.cookies.set("declic_session", fake)
    reply = client.get("/tableau", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/connexion")


@pytest.mark.parametrize(
    "base_url,secure", [("http://127.0.0.1:8000", False), ("https://declic.example", True)]
)
def test_session_cookie_flags(settings, engine, base_url, secure):
    settings.base_url = base_url
    with TestClient(create_app(bootstrap(settings)), base_url=base_url) as c:
        reply = c.get("/connexion")
    cookie = reply.headers["set-cookie"].lower()
    assert "declic_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert ("secure" in cookie) is secure


def test_a_partner_reads_only_its_own_submissions(client, engine):
    from store.admin import add_partner
    from tests.utils.factories import creation_item

    bge = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    adie = add_partner(engine, "adie", ["creation"], now=dt.datetime.now(dt.UTC))
    for token, ids in ((bge, ["b1", "b2"]), (adie, ["a1"])):
        reply = client.post(
            "/api/v1/events",
            json={"events": [creation_item(i) for i in ids]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 200
    mine = client.get("/api/v1/events", headers={"Authorization": f"Bearer {bge}"}).json()
    assert [e["external_id"] for e in mine] == ["b1", "b2"] and mine[0]["status"] == "accepted"
    page = client.get(
        f"/api/v1/events?after={mine[0]['id']}", headers={"Authorization": f"Bearer {bge}"}
    ).json()
    assert [e["external_id"] for e in page] == ["b2"]
    assert [
        e["external_id"]
        for e in client.get("/api/v1/events", headers={"Authorization": f"Bearer {adie}"}).json()
    ] == ["a1"]
    assert client.get("/api/v1/events").status_code == 401
