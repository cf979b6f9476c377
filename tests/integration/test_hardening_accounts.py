"""Sign-in under attack and the end of sessions and tokens (issue 14, findings 6 and 11), on SQLite and
PostgreSQL: bounded password checks, an atomic lockout per e-mail and source address that releases
itself, sessions that end on sign-out, password change and `declic users disable`, `declic partners
revoke`."""

from __future__ import annotations

import datetime as dt
import re
import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

import web.auth
from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from store.accounts import SignInLimits, add_user
from store.models import SignInFailure
from web.app import create_app

PASSWORD = "un-mot-de-passe-solide"
EMAIL = "agent@ille-et-vilaine.fr"
FAILURES = SignInFailure.__table__


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def user(engine, email: str = EMAIL) -> None:
    add_user(engine, email=email, name="Département", password=PASSWORD, role="collectivite",
             territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))


def ready(app, source: str = "testclient") -> tuple[TestClient, str]:
    """A client from `source` holding the sign-in page's CSRF token."""
    client = TestClient(app, client=(source, 50000))
    return client, csrf_of(client.get("/connexion").text)


def attempt(app, password: str, *, email: str = EMAIL, source: str = "testclient"):
    client, csrf = ready(app, source)
    return client, client.post("/connexion", data={"email": email, "password": password, "csrf": csrf},
                               follow_redirects=False)


def counting_checks(monkeypatch) -> list[str]:
    """Record every password check the sign-in route runs."""
    calls: list[str] = []
    real = web.auth.authenticate

    def counted(engine, email, password, now):
        calls.append(email)
        return real(engine, email, password, now)

    monkeypatch.setattr(web.auth, "authenticate", counted)
    return calls


def test_forty_concurrent_wrong_passwords_reach_at_most_five_checks(settings, engine, monkeypatch):
    user(engine)
    settings.signin_concurrency = 64  # the per-process bound out of the way: the store's count decides
    app = create_app(bootstrap(settings))
    calls = counting_checks(monkeypatch)
    clients = [ready(app) for _ in range(40)]
    statuses: list[int] = []
    start = threading.Barrier(len(clients))

    def post(client, csrf):
        start.wait()
        reply = client.post("/connexion", data={"email": EMAIL, "password": "faux", "csrf": csrf})
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=post, args=pair) for pair in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 40 and set(statuses) <= {401, 429}
    assert len(calls) <= 5, len(calls)
    assert statuses.count(401) == len(calls)
    with engine.connect() as conn:  # refused attempts leave nothing behind
        assert conn.execute(select(func.count()).select_from(FAILURES)).scalar_one() == len(calls)
    # On a loaded machine all forty may record their attempt before any counts, and all are refused (none
    # checked): the burst still leaves the owner no more locked out than its checked attempts say.
    checked = len(calls)
    if checked < 5:
        _, reply = attempt(app, "faux")
        assert reply.status_code == 401 and len(calls) == checked + 1


def test_password_checks_beyond_the_bound_are_answered_429_at_once(settings, engine, monkeypatch):
    user(engine)
    settings.signin_concurrency = 1
    app = create_app(bootstrap(settings))
    entered, release = threading.Event(), threading.Event()
    real = web.auth.authenticate

    def slow(engine, email, password, now):
        entered.set()
        release.wait(30)
        return real(engine, email, password, now)

    monkeypatch.setattr(web.auth, "authenticate", slow)
    first: list = []
    thread = threading.Thread(target=lambda: first.append(attempt(app, "faux")[1]))
    thread.start()
    assert entered.wait(30)
    try:
        busy = attempt(app, PASSWORD)[1]
    finally:
        release.set()
        thread.join(60)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "5"
    assert "Trop de connexions en même temps" in busy.text
    assert first[0].status_code == 401
    assert attempt(app, PASSWORD)[1].status_code == 303  # the slot is free again


def test_the_lockout_holds_one_address_back_not_the_owner_and_releases_itself(settings, engine):
    user(engine)
    app = create_app(bootstrap(settings))
    attacker = "203.0.113.66"
    for _ in range(5):
        assert attempt(app, "faux", source=attacker)[1].status_code == 401
    for _ in range(3):  # hammering does not lengthen the lockout: refused attempts are not recorded
        held = attempt(app, PASSWORD, source=attacker)[1]
        assert held.status_code == 429 and "Trop d&#39;essais" in held.text
    assert 14 * 60 <= int(held.headers["retry-after"]) <= 15 * 60
    # The owner, from its own address, is not kept out by the attacker's failures.
    assert attempt(app, PASSWORD, source="198.51.100.7")[1].status_code == 303
    with engine.begin() as conn:  # a quarter of an hour later
        conn.execute(update(FAILURES).values(at=FAILURES.c.at - dt.timedelta(minutes=16)))
    assert attempt(app, "faux", source=attacker)[1].status_code == 401


def test_one_address_trying_many_e_mails_is_held_back(settings, engine, monkeypatch):
    monkeypatch.setattr(web.auth, "LIMITS", SignInLimits(per_email_and_source=5, per_source=6))
    app = create_app(bootstrap(settings))
    for i in range(6):
        assert attempt(app, "faux", email=f"inconnu{i}@exemple.fr", source="203.0.113.5")[1].status_code == 401
    assert attempt(app, "faux", email="encore@exemple.fr", source="203.0.113.5")[1].status_code == 429
    assert attempt(app, "faux", email="encore@exemple.fr", source="203.0.113.6")[1].status_code == 401


def _cookie(client: TestClient) -> str:
    return client.cookies["declic_session"]


def _with_cookie(app, cookie: str) -> TestClient:
    client = TestClient(app)
    client.cookies.set("declic_session", cookie)
    return client


def test_a_session_ends_on_sign_out_everywhere(settings, engine):
    user(engine)
    app = create_app(bootstrap(settings))
    client, reply = attempt(app, PASSWORD)
    assert reply.status_code == 303
    copied = _cookie(client)
    home = client.get("/tableau")
    assert home.status_code == 200
    other_device, _ = attempt(app, PASSWORD)
    client.post("/deconnexion", data={"csrf": csrf_of(home.text)})
    for stale in (_with_cookie(app, copied), other_device):
        again = stale.get("/tableau", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].startswith("/connexion")
    client, reply = attempt(app, PASSWORD)  # signing in again works
    assert client.get("/tableau").status_code == 200


def test_a_new_password_ends_the_open_sessions(settings, engine):
    user(engine)
    app = create_app(bootstrap(settings))
    client, _ = attempt(app, PASSWORD)
    assert client.get("/tableau").status_code == 200
    add_user(engine, email=EMAIL, name="Département", password="un-tout-nouveau-secret", role="collectivite",
             territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))
    assert client.get("/tableau", follow_redirects=False).status_code == 303


def test_declic_users_disable_and_enable(settings, env_settings, engine):
    user(engine)
    app = create_app(bootstrap(settings))
    client, _ = attempt(app, PASSWORD)
    assert client.get("/tableau").status_code == 200
    runner = CliRunner()
    done = runner.invoke(cli, ["users", "disable", EMAIL.upper()])
    assert done.exit_code == 0 and "désactivé" in done.output
    assert client.get("/tableau", follow_redirects=False).status_code == 303
    assert attempt(app, PASSWORD)[1].status_code == 401
    unknown = runner.invoke(cli, ["users", "disable", "personne@exemple.fr"])
    assert unknown.exit_code == 2 and "Aucun compte" in unknown.output
    assert runner.invoke(cli, ["users", "enable", EMAIL]).exit_code == 0
    assert attempt(app, PASSWORD)[1].status_code == 303


def test_declic_partners_revoke(settings, env_settings, engine):
    runner = CliRunner()
    added = runner.invoke(cli, ["partners", "add", "bge-35", "--territory", "departement:35"])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    api = TestClient(create_app(bootstrap(settings)))
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/events", headers=headers).status_code == 200
    revoked = runner.invoke(cli, ["partners", "revoke", "bge-35"])
    assert revoked.exit_code == 0 and "révoqué" in revoked.output
    refused = api.get("/api/v1/events", headers=headers)
    assert refused.status_code == 401 and "révoqué" in refused.json()["detail"]
    assert "manquant" in api.get("/api/v1/events").json()["detail"]
    assert runner.invoke(cli, ["partners", "revoke", "inconnu"]).exit_code == 2
    again = runner.invoke(cli, ["partners", "add", "bge-35", "--territory", "departement:35"])
    new_token = again.output.strip().splitlines()[-1]
    assert api.get("/api/v1/events", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200
    assert api.get("/api/v1/events", headers=headers).status_code == 401
