"""The landing page calls the peer in one tap: an "Appeler <peer>" button at the top (shown on phones), every number
a tel: link in E.164, and no inline script or style (the pages run under a strict Content-Security-Policy)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.links import make_token
from tests.utils.outreach import business, campaign, enrol
from web.app import create_app


@pytest.fixture
def landing_html(settings, engine):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        b = business(conn, "35238")
        _, m = enrol(conn, campaign_id, b)
    with TestClient(create_app(bootstrap(settings))) as client:
        reply = client.get(f"/m/{make_token(settings.resolved_secret, 'm', m, now=dt.datetime.now(dt.UTC))}")
    assert reply.status_code == 200
    return reply.text


def test_the_landing_page_calls_the_peer_in_one_tap(landing_html):
    main = landing_html.split('<main id="contenu"', 1)[1]
    call = re.search(r'<a class="button call" href="([^"]+)">([^<]+)</a>', main)
    assert call and call.groups() == ("tel:+33299023536", "Appeler Claire Le Goff")
    assert main.index(call.group(0)) < main.index("<h1>"), "the call button comes first"
    assert re.findall(r'href="(tel:[^"]+)"', main)[:2] == ["tel:+33299023536", "tel:+33299023536"]
    assert 'class="call-now"' in main


def test_the_landing_page_has_no_inline_script_or_style(landing_html):
    assert "<script" not in landing_html and "<style" not in landing_html
    assert not re.search(r"\sstyle=|\son[a-z]+=", landing_html)

