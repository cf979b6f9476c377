"""SQLite stores: the WAL is copied back into the database file by a background thread after commits, not by
the committing request, and that thread stops with the engine's pool."""

from __future__ import annotations

import threading
import time

from store.db import make_engine


def _wait(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _checkpointer_alive(path: str) -> bool:
    return any(t.name == f"sqlite-checkpoint {path}" and t.is_alive() for t in threading.enumerate())


def test_a_commit_is_checkpointed_in_the_background_and_dispose_stops_it(tmp_path):
    path = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
        with engine.connect() as conn:  # the WAL is far below the connections' own checkpoint threshold
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() > 1000
        before = path.stat().st_size
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t (body) SELECT zeroblob(4000) FROM "
                                 "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
                                 "SELECT i FROM n)")
        # 200 rows of 4 kB reach the database file only through a checkpoint.
        assert _wait(lambda: path.stat().st_size > before + 500_000)
        assert _checkpointer_alive(str(path))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 200
    finally:
        engine.dispose()
    assert _wait(lambda: not _checkpointer_alive(str(path)))
