"""Watched partner feeds against a real HTTP server on loopback, on SQLite and PostgreSQL: conditional GET,
the same body twice, 429 with Retry-After, 500 then 200, a body cut in the middle, tokens kept secret."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.feeds import watch_due_feeds
from store.admin import add_partner
from store.feeds import FeedError, add_feed, get_feed, list_feeds, parse_period, remove_feed, set_status
from store.models import TriggerEvent
from tests.utils.factories import creation_item, siret
from tests.utils.feed_server import Answer, FeedServer

HEADER = "external_id;type;siret;occurred_on;name;naf_code;commune_code;email\n"


def csv_body(ids: list[str], sirets: dict[str, str]) -> bytes:
    day = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    lines = [
        f"{i};creation;{sirets.setdefault(i, siret())};{day};Plomberie {i};43.22A;35238;p{i}@exemple.fr"
        for i in ids
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(TriggerEvent.__table__)).scalar()


@pytest.fixture
def app(settings):
    # Short waits: the retry logic is the same, the test just does not sleep for seconds.
    settings.feed_backoff_seconds = 0.05
    settings.feed_max_wait_seconds = 3
    settings.feed_timeout_seconds = 5
    return bootstrap(settings)


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def due_now(app, name):
    # Make a feed due again without waiting its period.
    from sqlalchemy import update

    from store.models import Feed

    with app.engine.begin() as conn:
        conn.execute(
            update(Feed.__table__)
            .where(Feed.__table__.c.name == name)
            .values(next_due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


def test_conditional_get_304_and_a_new_version(app, server):
    sirets: dict[str, str] = {}
    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    first = csv_body(["a1", "a2"], sirets)
    server.routes["/bge.csv"] = lambda seen: (
        Answer(304)
        if seen.headers.get("if-none-match") == '"v1"'
        else Answer(200, first, {"ETag": '"v1"', "Last-Modified": "Wed, 25 Nov 2026 08:00:00 GMT"})
    )
    add_feed(
        app.engine,
        name="bge",
        format="partner-csv",
        url=server.url("/bge.csv"),
        local=True,
        partner="bge",
        every_seconds=3600,
        now=app.now(),
    )

    (outcome,) = watch_due_feeds(app)
    assert not outcome["failed"] and outcome["events"] == 2
    assert stored(app.engine) == 2
    # Not due again before its period.
    assert watch_due_feeds(app) == []

    due_now(app, "bge")
    (outcome,) = watch_due_feeds(app)
    assert outcome["state"] == "inchangé (304)"
    request = server.requests_to("/bge.csv")[-1]
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Wed, 25 Nov 2026 08:00:00 GMT"

    second = csv_body(["a1", "a2", "a3"], sirets)
    server.routes["/bge.csv"] = [Answer(200, second, {"ETag": '"v2"'})]
    due_now(app, "bge")
    (outcome,) = watch_due_feeds(app)
    assert outcome["events"] == 1  # a1 and a2 were stored already
    assert stored(app.engine) == 3
    feed = get_feed(app.engine, "bge")
    assert feed.etag == '"v2"' and feed.events_total == 3 and feed.failures == 0
    assert feed.describe()["state"] == "à jour"


def test_same_body_twice_without_validators_is_ingested_once(app, server):
    add_partner(app.engine, "adie", ["creation"], now=dt.datetime.now(dt.UTC))
    body = csv_body(["b1", "b2", "b3"], {})
    server.routes["/adie.csv"] = [Answer(200, body)]
    add_feed(app.engine, name="adie", format="partner-csv", url=server.url("/adie.csv"), local=True, partner="adie",
             now=app.now())
    assert watch_due_feeds(app)[0]["events"] == 3
    due_now(app, "adie")
    (outcome,) = watch_due_feeds(app)
    assert outcome["state"] == "inchangé (même contenu)" and outcome["events"] == 0
    assert stored(app.engine) == 3
    assert get_feed(app.engine, "adie").last_outcome == "inchangé (même contenu)"


def test_429_with_retry_after_is_honoured(app, server):
    add_partner(app.engine, "cma", ["creation"], now=dt.datetime.now(dt.UTC))
    server.routes["/cma.csv"] = [
        Answer(429, b"slow down", {"Retry-After": "1"}),
        Answer(200, csv_body(["c1"], {})),
    ]
    add_feed(app.engine, name="cma", format="partner-csv", url=server.url("/cma.csv"), local=True, partner="cma",
             now=app.now())
    started = time.monotonic()
    (outcome,) = watch_due_feeds(app)
    assert not outcome["failed"] and outcome["events"] == 1
    assert time.monotonic() - started >= 1.0  # waited what the server asked, not the 0.05 s backoff
    assert len(server.requests_to("/cma.csv")) == 2


def test_a_long_retry_after_moves_the_next_run_instead_of_waiting(app, server):
    add_partner(app.engine, "cma", ["creation"], now=dt.datetime.now(dt.UTC))
    server.routes["/cma.csv"] = [Answer(429, b"", {"Retry-After": "600"})]
    add_feed(app.engine, name="cma", format="partner-csv", url=server.url("/cma.csv"), local=True, partner="cma",
             now=app.now())
    before = dt.datetime.now(dt.UTC)
    (outcome,) = watch_due_feeds(app)
    assert outcome["failed"]
    feed = get_feed(app.engine, "cma")
    due = feed.next_due_at if feed.next_due_at.tzinfo else feed.next_due_at.replace(tzinfo=dt.UTC)
    assert due >= before + dt.timedelta(seconds=590)
    assert "trop de requêtes (429)" in feed.last_error and "600 s" in feed.last_error
    assert len(server.requests_to("/cma.csv")) == 1


def test_500_then_200(app, server):
    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    server.routes["/bge.csv"] = [Answer(500, b"oops"), Answer(200, csv_body(["d1", "d2"], {}))]
    add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
             now=app.now())
    (outcome,) = watch_due_feeds(app)
    assert not outcome["failed"] and outcome["events"] == 2
    assert [s.path for s in server.seen] == ["/bge.csv", "/bge.csv"]


def test_body_cut_in_the_middle_commits_nothing_and_is_retried_next_run(app, server):
    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    body = csv_body([f"e{i}" for i in range(40)], {})
    server.routes["/bge.csv"] = [Answer(200, body, {"ETag": '"cut"'}, cut_at=len(body) // 2)]
    add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
             now=app.now())

    (outcome,) = watch_due_feeds(app)
    assert outcome["failed"]
    assert stored(app.engine) == 0  # the first half was never ingested
    feed = get_feed(app.engine, "bge")
    assert feed.etag is None and feed.content_hash is None  # nothing moved on
    assert "interrompu" in feed.last_error or "incomplet" in feed.last_error
    assert feed.describe()["state"] == "en échec (1 passage de suite)"
    assert len(server.requests_to("/bge.csv")) == 3  # retried within the run
    assert not list((app.settings.home / "feeds" / "bge").glob("*"))  # no partial file left behind

    # Next run: the server is fine again, the whole body goes in.
    server.routes["/bge.csv"] = [Answer(200, body, {"ETag": '"whole"'})]
    (outcome,) = watch_due_feeds(app)
    assert not outcome["failed"] and outcome["events"] == 40
    feed = get_feed(app.engine, "bge")
    assert feed.failures == 0 and feed.last_error is None and feed.etag == '"whole"'


def test_partner_json_feed_with_a_token_from_the_environment(app, server, monkeypatch):
    add_partner(app.engine, "urssaf", ["creation"], now=dt.datetime.now(dt.UTC))
    monkeypatch.setenv("DECLIC_FEED_TOKEN_URSSAF", "s3cr3t-token-value")
    items = [creation_item(f"j{i}") for i in range(4)] + [{"external_id": "bad", "type": "creation"}]
    server.routes["/events.json"] = lambda seen: (
        Answer.json({"events": items})
        if seen.headers.get("authorization") == "Bearer s3cr3t-token-value"
        else Answer(401, b"no")
    )
    add_feed(
        app.engine,
        name="urssaf",
        format="partner-json",
        url=server.url("/events.json"),
        local=True,
        partner="urssaf",
        token_env="DECLIC_FEED_TOKEN_URSSAF",
        now=app.now(),
    )
    (outcome,) = watch_due_feeds(app)
    assert outcome["events"] == 4 and outcome["report"]["rejected"]
    shown = json.dumps([f.describe() for f in list_feeds(app.engine)])
    assert "s3cr3t" not in shown and "$DECLIC_FEED_TOKEN_URSSAF" in shown

    # Without the variable: a plain error, no request with an empty token.
    monkeypatch.delenv("DECLIC_FEED_TOKEN_URSSAF")
    due_now(app, "urssaf")
    (outcome,) = watch_due_feeds(app)
    assert outcome["failed"] and "DECLIC_FEED_TOKEN_URSSAF" in get_feed(app.engine, "urssaf").last_error


def test_a_refused_file_is_a_failure_in_plain_words(app, server):
    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    server.routes["/bge.csv"] = [Answer(200, b"nom,prenom\nDurand,Jean\n")]
    add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
             now=app.now())
    (outcome,) = watch_due_feeds(app)
    assert outcome["failed"]
    assert "missing columns" in get_feed(app.engine, "bge").last_error


def test_feeds_as_data_pause_resume_remove(app, server):
    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    server.routes["/bge.csv"] = [Answer(200, csv_body(["f1"], {}))]
    add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
             now=app.now())
    with pytest.raises(FeedError, match="déjà"):
        add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/x.csv"), local=True, partner="bge",
                 now=app.now())
    with pytest.raises(FeedError, match="partenaire inconnu"):
        add_feed(app.engine, name="other", format="partner-csv", url=server.url("/x.csv"), local=True, partner="nobody",
                 now=app.now())
    with pytest.raises(FeedError, match="format inconnu"):
        add_feed(app.engine, name="other", format="xml", url=server.url("/x.csv"), local=True, now=app.now())
    set_status(app.engine, "bge", "paused", now=app.now())
    assert watch_due_feeds(app) == [] and server.seen == []
    assert get_feed(app.engine, "bge").describe()["state"] == "en pause"
    set_status(app.engine, "bge", "active", now=app.now())
    assert watch_due_feeds(app)[0]["events"] == 1
    remove_feed(app.engine, "bge")
    assert list_feeds(app.engine) == [] and stored(app.engine) == 1


def test_periods():
    assert parse_period("30min") == 1800 and parse_period("6h") == 21600 and parse_period("1d") == 86400
    assert parse_period("30m") == 1800 and parse_period("2w") == 14 * 86400  # the old minutes still read
    with pytest.raises(FeedError):
        parse_period("soon")


def test_two_overlapping_runs_never_fetch_the_same_feed(app, server):
    from store.feeds import claim_feed, due_feeds

    add_partner(app.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
             now=app.now())
    now = dt.datetime.now(dt.UTC)
    (feed,) = due_feeds(app.engine, now)
    assert claim_feed(app.engine, feed, now, dt.timedelta(minutes=30))
    assert not claim_feed(app.engine, feed, now, dt.timedelta(minutes=30))  # the other run read it as due too
    assert due_feeds(app.engine, now) == [] and watch_due_feeds(app, now=now) == []
