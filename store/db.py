"""Engine and sessions: a SQLite file by default, PostgreSQL by URL, the same code for both."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

_ENGINES: dict[str, Engine] = {}


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_CACHE_KIB = 32 * 1024
_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers (the web app) work while a writer (ingest, dispatch) commits;
    # NORMAL keeps commits cheap and is still durable against an application crash.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # A page cache that holds the pages a batch of writes touches: the B-trees of a growing store (unique and
    # secondary indexes keyed by SIRET, SIREN, commune) take each new row at a random place, so with the
    # default 2 MiB a batch of 500 events read most of its index pages back from the file. Memory is taken
    # as pages are used, up to this bound per connection.
    cur.execute(f"PRAGMA cache_size={-_CACHE_KIB}")
    # Checkpoint (copy the WAL back into the database file) every ~40 MiB of log rather than every ~4 MiB: a
    # batch of partner events writes a few thousand pages, so the default ran a checkpoint, with its two
    # fsyncs, in nearly every committing request; spaced out, a page written by several batches is copied once.
    cur.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
    cur.close()


def make_engine(url: str) -> Engine:
    """A new engine for `url` with the dialect's settings."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # Last in, first out: the connection just used is the one taken next, its page cache still valid (SQLite
        # drops a connection's whole cache when another connection has written since).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return engine


def get_engine(url: str) -> Engine:
    """The process-wide engine for `url` (one pool per URL)."""
    url = normalize_url(url)
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
