"""Shared fixtures: real databases (SQLite file and PostgreSQL), a real SMTP server, a live web server.

PostgreSQL is required: integration tests run on both databases and fail (never skip) when the server
at DECLIC_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) is unreachable. To
narrow the suite on purpose, deselect with `-m "not postgres"` (README, "Tests").
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

# Prefect writes under PREFECT_HOME at import: keep it out of the user's home, quiet and fast.
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="declic-prefect-"))
os.environ.setdefault("PREFECT_HOME", str(_PREFECT_HOME))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import pytest  # noqa: E402
from sqlalchemy import create_engine, delete, text  # noqa: E402

from integrations.email_smtp import unpaced_policy  # noqa: E402
from integrations.smtp_sink import SmtpSink, free_port  # noqa: E402

# The test sinks are loopback servers, not the providers whose domains synthetic addresses use: no provider pace
# (issue 18); the policy's own tests pass theirs. Dispatchers started as processes inherit it.
os.environ.setdefault("DECLIC_MAIL_DOMAIN_POLICY", unpaced_policy())
from orchestrator.app.bootstrap import bootstrap  # noqa: E402
from orchestrator.app.settings import Settings  # noqa: E402
from store.db import dispose_engines, get_engine  # noqa: E402

POSTGRES_URL = os.environ.get("DECLIC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-key-0123456789abcdef"

# Tables emptied between tests (reference tables stay loaded for the session), children first.
_VOLATILE = ("messageevent", "interaction", "message", "enrollment", "triggerevent", "suppression",
             "campaign", "partner", "business")


def _volatile_tables(engine):
    from sqlmodel import SQLModel

    import store.models  # noqa: F401

    reference = {"metierfamily", "nafcode", "commune", "territory", "alembic_version"}
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name not in reference]
    return tables


def _prepare(url: str) -> None:
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(url)
    load_reference(get_engine(url))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'declic.db'}"
    _prepare(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh schema in the test database for this session, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # a required service that is missing must fail loudly, not skip
        pytest.fail(f"PostgreSQL is required at {POSTGRES_URL} ({exc}); see README 'Tests' to narrow the suite")
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    _prepare(url)
    yield url
    dispose_engines()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Each integration test runs on SQLite and on PostgreSQL, on an emptied store."""
    url = request.getfixturevalue(f"{request.param}_url")
    engine = get_engine(url)
    with engine.begin() as conn:
        for table in _volatile_tables(engine):
            conn.execute(delete(table))
    return url


@pytest.fixture
def engine(db_url):
    return get_engine(db_url)


@pytest.fixture
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def settings(db_url, smtp_sink, tmp_path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, secret_key=TEST_SECRET, smtp_port=smtp_sink.port,
                    base_url="http://127.0.0.1:8000")


@pytest.fixture
def env_settings(settings, monkeypatch) -> Settings:
    """The same settings exported as DECLIC_* variables (for code that reads the environment: flows, CLI)."""
    for key, value in {"DECLIC_HOME": str(settings.home), "DECLIC_DATABASE_URL": settings.database_url,
                       "DECLIC_SECRET_KEY": TEST_SECRET, "DECLIC_SMTP_PORT": str(settings.smtp_port),
                       "DECLIC_BASE_URL": settings.base_url}.items():
        monkeypatch.setenv(key, value)
    return settings


@pytest.fixture
def live_server(settings):
    """The web app served by uvicorn on a loopback port; yields its base URL."""
    import uvicorn

    from web.app import create_app

    port = free_port()
    settings.base_url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(create_app(bootstrap(settings)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield settings.base_url
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (it costs several seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    # The harness's own start-up timeout (30 s) ignores PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS;
    # a busy two-core CI machine needs longer to migrate the test server's SQLite file.
    with prefect_test_harness(server_startup_timeout=120):
        yield
