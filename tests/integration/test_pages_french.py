"""Every page a person reads speaks French (issue 19, "Done when"): the dashboard's pages signed in as the operator
and as a collectivité on a seeded store, and the public pages (home, landing, unsubscribe, sign-in, diagnostic),
scanned for snake_case codes, English status words, tracebacks, ISO timestamps and bare SIREN/SIRET numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from orchestrator.core.links import make_token
from tests.integration.test_web_dashboard import app, signed_in, world  # noqa: F401 (fixtures)
from tests.utils.french_scan import page_text, problems


def dashboard_pages(world) -> list[str]:  # noqa: F811
    rennes = world["rennes"]
    return [
        "/tableau",
        f"/tableau/campagnes/{rennes.campaign_id}",
        f"/tableau/campagnes/{rennes.campaign_id}/entreprises",
        "/tableau/entreprises",
        f"/tableau/entreprises/{rennes.business_ids[0]}",
        "/tableau/appels",
        "/tableau/suivis",
        "/tableau/registre/ambassadeurs",
        "/tableau/registre/offres",
        "/tableau/journal",
        "/tableau/barometre",
        "/tableau/campagnes/nouvelle",
        f"/tableau/campagnes/nouvelle?depuis={rennes.campaign_id}",
    ]


def scan(client: TestClient, path: str, found: dict[str, list[str]]) -> None:
    reply = client.get(path)
    if reply.status_code == 403:
        return  # a page this role does not see (the registry, the journal for a collectivité)
    assert reply.status_code == 200, f"{path}: {reply.status_code}"
    bad = problems(page_text(reply.text))
    if bad:
        found[path] = bad


@pytest.mark.parametrize("email", ["op@declic.fr", "agent@ille-et-vilaine.fr"])
def test_dashboard_pages_speak_french(app, world, email):  # noqa: F811
    client = signed_in(app, email)
    found: dict[str, list[str]] = {}
    for path in dashboard_pages(world):
        scan(client, path, found)
    assert not found, "\n".join(f"{p}:\n  " + "\n  ".join(b) for p, b in found.items())


def test_public_pages_speak_french(app, settings, world):  # noqa: F811
    from orchestrator.core.short_codes import short_code

    message = world["rennes"].message_ids[0]
    secret = settings.resolved_secret
    client = TestClient(app)
    found: dict[str, list[str]] = {}
    for path in ("/", "/connexion", f"/m/{make_token(secret, 'm', message, now=dt.datetime.now(dt.UTC))}",
                 f"/m/{make_token(secret, 'm', message, now=dt.datetime.now(dt.UTC))}/diagnostic",
                 f"/u/{make_token(secret, 'u', message, now=dt.datetime.now(dt.UTC))}",
                 f"/s/{short_code(secret, message)}/diagnostic"):
        scan(client, path, found)
    assert not found, "\n".join(f"{p}:\n  " + "\n  ".join(b) for p, b in found.items())
