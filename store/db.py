"""Engine and sessions: a SQLite file by default, PostgreSQL by URL, the same code for both."""

from __future__ import annotations

import sqlite3
import threading

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
BUSY_TIMEOUT_MS = 30_000  # how long a statement waits for another connection's write lock
# The committing connection's own checkpoint, a bound should the background one (`_Checkpoints`) fall behind.
_CHECKPOINT_PAGES = 10_000


class _Checkpoints:
    """The WAL checkpoints of one SQLite file run by a daemon thread shortly after commits, not by the request
    that commits: a checkpoint copies thousands of pages and syncs the file twice (40-80 ms at 60k partner
    events), which a partner's batch otherwise waited for. PASSIVE: it never blocks a reader or a writer, and
    copies what it can. The thread ends after a while without commits, or when the engine's pool is disposed,
    and starts again with the next commit."""

    DELAY = 0.5  # seconds after a commit: the commits of that moment are copied together (a page once)
    IDLE = 30.0  # seconds without a commit before the thread ends

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.quit: threading.Event | None = None  # the running thread's own stop signal

    def notify(self, *_args) -> None:
        self.wake.set()
        if self.quit is None:
            with self.lock:
                if self.quit is None:
                    self.quit = threading.Event()
                    threading.Thread(target=self._run, args=(self.quit,), name=f"sqlite-checkpoint {self.path}",
                                     daemon=True).start()

    def stop(self, *_args) -> None:
        with self.lock:
            if self.quit is not None:
                self.quit.set()
                self.quit = None
                self.wake.set()

    def _run(self, quit_: threading.Event) -> None:
        conn = None
        try:
            # mode=rw: never create the file (a test may have removed its store meanwhile).
            conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, check_same_thread=False)
            while self.wake.wait(self.IDLE) and not quit_.is_set():
                quit_.wait(self.DELAY)
                self.wake.clear()
                if quit_.is_set():
                    break
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # the committing connections still checkpoint by themselves (`_CHECKPOINT_PAGES`)
        finally:
            if conn is not None:
                conn.close()
            with self.lock:
                if self.quit is quit_:
                    self.quit = None
            if self.wake.is_set() and not quit_.is_set():
                self.notify()  # a commit came in while it was ending


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers (the web app) work while a writer (ingest, dispatch) commits;
    # NORMAL keeps commits cheap and is still durable against an application crash.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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
        path = engine.url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            checkpoints = _Checkpoints(path)
            event.listen(engine, "commit", checkpoints.notify)
            event.listen(engine, "engine_disposed", checkpoints.stop)
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
