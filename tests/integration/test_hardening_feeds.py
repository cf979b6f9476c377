"""Issue 14, finding 10: a feed reaches only public http(s) addresses (unless marked local), re-checked on
every redirect, with a capped body; whatever fails, the feed is released and its error said in French.

The feed servers are real HTTP servers on loopback. To play "a partner's public server" without the
internet, one test stand-in address (127.0.0.1) is treated as public by wrapping the real rule; every
other address (127.0.0.2 as "an internal service", 169.254.169.254, localhost...) goes through it as is.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import triggers.feeds.http as feed_http_module
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.feeds import watch_due_feeds
from store.admin import add_partner
from store.feeds import add_feed, get_feed
from store.models import TriggerEvent
from tests.utils.factories import siret
from tests.utils.feed_server import Answer, FeedServer
from triggers.feeds.http import refused_address

HEADER = "external_id;type;siret;occurred_on;name;naf_code;commune_code;email\n"
SECRET = b"INTERNAL-ADMIN-PAGE root:x:0:0 password=hunter2"


def csv_body(n: int = 2) -> bytes:
    day = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    lines = [f"e{i};creation;{siret()};{day};Plomberie {i};43.22A;35238;p{i}@exemple.fr" for i in range(n)]
    return (HEADER + "\n".join(lines) + "\n").encode()


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(TriggerEvent.__table__)).scalar()


@pytest.fixture
def app(settings):
    settings.feed_backoff_seconds = 0.05
    settings.feed_max_wait_seconds = 3
    settings.feed_timeout_seconds = 5
    application = bootstrap(settings)
    add_partner(application.engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    return application


@pytest.fixture
def public(monkeypatch):
    """A feed server at 127.0.0.1, which the address rule treats as a public server for this test."""
    real = feed_http_module.refused_address
    stand_in = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(feed_http_module, "refused_address", lambda ip: None if ip == stand_in else real(ip))
    with FeedServer() as server:
        yield server


@pytest.fixture
def internal():
    """An "internal service" on another loopback address: it must never be asked anything."""
    with FeedServer("127.0.0.2") as server:
        server.routes["/secret"] = [Answer(200, SECRET)]
        yield server


def assert_released_with(app, name: str, words: str, now: dt.datetime) -> str:
    feed = get_feed(app.engine, name)
    assert feed.failures == 1 and feed.last_outcome == "échec"
    assert words in feed.last_error
    assert "rien n'a été enregistré" in feed.last_error
    assert SECRET.decode() not in feed.last_error
    # Released: due again at once (not held by the 30-minute claim).
    due = feed.next_due_at if feed.next_due_at.tzinfo else feed.next_due_at.replace(tzinfo=dt.UTC)
    assert due <= now + dt.timedelta(seconds=1)
    return feed.last_error


@pytest.mark.parametrize(
    ("format", "path"),
    [("partner-csv", "/bge.csv"), ("bodacc-api", "/records"), ("sirene-api", "/siret"), ("partner-json", "/e")],
)
def test_a_feed_on_loopback_is_refused_unless_marked_local(app, format, path):
    with FeedServer() as server:
        server.routes[path] = [Answer(200, SECRET)]
        partner = "bge" if format.startswith("partner") else None
        add_feed(app.engine, name="f", format=format, url=server.url(path), partner=partner, now=app.now())
        now = dt.datetime.now(dt.UTC)
        (outcome,) = watch_due_feeds(app, now=now)
        assert outcome["failed"]
        assert server.seen == []  # refused before any connection
    error = assert_released_with(app, "f", "adresse refusée", now)
    assert "bouclage" in error and "declic feeds local" in error


def test_a_loopback_feed_marked_local_is_fetched(app):
    with FeedServer() as server:
        server.routes["/bge.csv"] = [Answer(200, csv_body(2))]
        add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), partner="bge", local=True,
                 now=app.now())
        (outcome,) = watch_due_feeds(app)
    assert not outcome["failed"] and outcome["events"] == 2


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://localhost:{port}/bge.csv", "bouclage"),  # a name: resolved, then refused
        ("http://169.254.169.254/latest/meta-data/", "lien-local"),
        ("http://[::ffff:127.0.0.1]:{port}/bge.csv", "IPv4 dans IPv6"),
        ("http://10.1.2.3/bge.csv", "réseau privé"),
        ("http://0.0.0.0:{port}/bge.csv", "non spécifiée"),
    ],
)
def test_names_and_non_public_addresses_are_refused(app, url, words):
    with FeedServer() as server:
        server.routes["/bge.csv"] = [Answer(200, SECRET)]
        port = server.httpd.server_address[1]
        add_feed(app.engine, name="bge", format="partner-csv", url=url.format(port=port), partner="bge", now=app.now())
        now = dt.datetime.now(dt.UTC)
        (outcome,) = watch_due_feeds(app, now=now)
        assert outcome["failed"] and server.seen == []
    assert_released_with(app, "bge", words, now)


def test_a_redirect_to_an_internal_address_is_refused(app, public, internal):
    public.routes["/bge.csv"] = [Answer(302, b"", {"Location": internal.url("/secret")})]
    add_feed(app.engine, name="bge", format="partner-csv", url=public.url("/bge.csv"), partner="bge", now=app.now())
    now = dt.datetime.now(dt.UTC)
    (outcome,) = watch_due_feeds(app, now=now)
    assert outcome["failed"] and SECRET.decode() not in outcome["state"]
    assert internal.seen == []
    assert_released_with(app, "bge", "adresse refusée: 127.0.0.2", now)
    assert stored(app.engine) == 0


def test_a_redirect_to_a_file_url_is_refused_without_a_crash(app, public):
    public.routes["/bge.csv"] = [Answer(302, b"", {"Location": "file:///etc/passwd"})]
    add_feed(app.engine, name="bge", format="partner-csv", url=public.url("/bge.csv"), partner="bge", now=app.now())
    now = dt.datetime.now(dt.UTC)
    (outcome,) = watch_due_feeds(app, now=now)
    assert outcome["failed"]
    assert_released_with(app, "bge", "seules les adresses http(s) sont suivies (file://)", now)


def test_redirects_are_followed_on_public_addresses_a_bounded_number_of_times(app, public):
    public.routes["/old.csv"] = [Answer(301, b"", {"Location": "/bge.csv"})]
    public.routes["/bge.csv"] = [Answer(200, csv_body(3))]
    public.routes["/loop"] = [Answer(302, b"", {"Location": "/loop"})]
    add_feed(app.engine, name="bge", format="partner-csv", url=public.url("/old.csv"), partner="bge", now=app.now())
    add_feed(app.engine, name="loop", format="partner-csv", url=public.url("/loop"), partner="bge", now=app.now())
    now = dt.datetime.now(dt.UTC)
    outcomes = {o["feed"]: o for o in watch_due_feeds(app, now=now)}
    assert not outcomes["bge"]["failed"] and outcomes["bge"]["events"] == 3
    assert outcomes["loop"]["failed"]
    assert_released_with(app, "loop", "trop de redirections (plus de 5)", now)
    assert len(public.requests_to("/loop")) == 6


def test_a_redirect_to_another_host_does_not_carry_the_token(app, monkeypatch, internal):
    monkeypatch.setenv("BGE_TOKEN", "tok-secret")
    internal.routes["/bge.csv"] = [Answer(200, csv_body(1))]
    with FeedServer() as first:
        first.routes["/bge.csv"] = [Answer(302, b"", {"Location": internal.url("/bge.csv")})]
        add_feed(
            app.engine,
            name="bge",
            format="partner-csv",
            url=first.url("/bge.csv"),
            partner="bge",
            token_env="BGE_TOKEN",
            local=True,
            now=app.now(),
        )
        (outcome,) = watch_due_feeds(app)
        assert first.seen[0].headers["authorization"] == "Bearer tok-secret"
    assert not outcome["failed"], outcome
    assert "authorization" not in internal.requests_to("/bge.csv")[0].headers


def test_bodies_are_capped_while_they_stream(app):
    app.settings.feed_max_mb = 1
    big = csv_body(1) + b"#" * 1_500_000 + b"\n"
    with FeedServer() as server:
        server.routes["/plain.csv"] = [Answer(200, big)]
        # Compressed on the wire: small Content-Length, the cap counts what is read once decompressed.
        server.routes["/bomb.csv"] = [Answer(200, gzip.compress(big), {"Content-Encoding": "gzip"})]
        server.routes["/records"] = [Answer.json({"total_count": 1, "results": ["x" * 1_500_000]})]
        add_feed(app.engine, name="plain", format="partner-csv", url=server.url("/plain.csv"), partner="bge",
                 local=True, now=app.now())
        add_feed(app.engine, name="bomb", format="partner-csv", url=server.url("/bomb.csv"), partner="bge",
                 local=True, now=app.now())
        add_feed(app.engine, name="api", format="bodacc-api", url=server.url("/records"), local=True, now=app.now())
        now = dt.datetime.now(dt.UTC)
        outcomes = watch_due_feeds(app, now=now)
    assert [o["failed"] for o in outcomes] == [True, True, True]
    for name in ("plain", "bomb", "api"):
        assert_released_with(app, name, "réponse trop volumineuse: plus de 1 Mo", now)
    assert stored(app.engine) == 0
    assert not list((app.settings.home / "feeds" / "bomb").glob("*.part"))


def test_an_unexpected_failure_still_releases_the_feed(app):
    # The feeds' working folder cannot be created: not a fetch error, still recorded and released.
    (app.settings.home / "feeds").write_text("not a folder")
    with FeedServer() as server:
        server.routes["/bge.csv"] = [Answer(200, csv_body(1))]
        add_feed(app.engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), partner="bge", local=True,
                 now=app.now())
        now = dt.datetime.now(dt.UTC)
        (outcome,) = watch_due_feeds(app, now=now)
    assert outcome["failed"]
    assert_released_with(app, "bge", "erreur inattendue", now)


def test_feeds_add_local_and_feeds_local_from_the_command_line(env_settings):
    from orchestrator.cli.main import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["feeds", "add", "ici", "--format", "bodacc-api", "--url", "http://127.0.0.1:9/r"])
    assert result.exit_code == 0, result.output
    engine = bootstrap(env_settings).engine
    assert get_feed(engine, "ici").local is False
    result = runner.invoke(cli, ["feeds", "local", "ici"])
    assert result.exit_code == 0 and "réseau local autorisé" in result.output
    assert get_feed(engine, "ici").local is True
    assert runner.invoke(cli, ["feeds", "local", "ici", "--off"]).exit_code == 0
    assert get_feed(engine, "ici").local is False
    result = runner.invoke(
        cli, ["feeds", "add", "la", "--format", "bodacc-api", "--url", "http://127.0.0.1:9/r", "--local"]
    )
    assert result.exit_code == 0 and "réseau local autorisé" in " ".join(result.output.split())
    assert get_feed(engine, "la").describe()["local"] is True


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1",
        "fc00::1", "ff02::1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "2001:db8::1",
        "::ffff:8.8.8.8",
    ],
)
def test_non_global_addresses_are_refused(address):
    assert refused_address(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "193.51.24.1", "2001:4860:4860::8888", "2002:808:808::"])
def test_public_addresses_are_allowed(address):
    assert refused_address(ipaddress.ip_address(address)) is None
