"""The machine's own speed, on a fixed workload that owes nothing to Déclic's code.

    python -m bench.reference

Why: the sandboxes that run the benchmarks differ by a factor of two to three at the same work, and one machine's
speed moves by half within an hour. A figure is read beside this reference, taken in the same run: two figures
from different machines compare through their references, not directly. Three workloads, because the machines do
not differ by the same factor at all of them: the interpreter's on a small loop, the interpreter's on a large
library (the standard `email` package: a program too big for the CPU's caches, as the dispatcher is; two machines
with the same small-loop figure gave the dispatcher 0.25 and 0.58 ms an e-mail) and SQLite's (a store's inserts).
Each is the best CPU time of five (the least disturbed by the neighbours).
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import emit

INTERPRETER_LOOPS = 200_000
SQLITE_ROWS = 100_000


def interpreter_ms() -> float:
    """CPU milliseconds of a pure-Python loop of the kind the dispatcher and the API run: dicts, strings, ints."""
    started = time.process_time()
    seen: dict[str, int] = {}
    total = 0
    for i in range(INTERPRETER_LOOPS):
        key = f"{i % 9973:05d}-{i & 255}"
        seen[key] = seen.get(key, 0) + 1
        total += len(key.upper()) * (i % 7)
    return 1000 * (time.process_time() - started)


LIBRARY_MESSAGES = 150
_TEXT = ("Bonjour,\n\nVous venez de créer votre boulangerie : félicitations. Une commerçante de votre commune "
         "vous montre en une heure comment elle prend ses commandes en ligne.\n") * 4


def library_ms() -> float:
    """CPU milliseconds to build LIBRARY_MESSAGES French e-mails (text and HTML) to bytes with the standard `email`
    package: headers encoded, bodies quoted-printable, the generator's folding."""
    from email.message import EmailMessage

    started = time.process_time()
    for i in range(LIBRARY_MESSAGES):
        msg = EmailMessage()
        msg["From"] = "Déclic <bonjour@declic.example>"
        msg["To"] = f"artisan{i}@exemple.fr"
        msg["Subject"] = f"Votre boulangerie, n° {i} : une aide près de chez vous"
        msg.set_content(_TEXT, cte="quoted-printable")
        msg.add_alternative(f"<p>{_TEXT}</p>", subtype="html", cte="quoted-printable")
        msg.as_bytes()
    return 1000 * (time.process_time() - started)


def sqlite_ms(directory: Path) -> float:
    """CPU milliseconds to insert SQLITE_ROWS rows keyed by random 14-digit texts (SIRET-like, under a unique index)
    in one transaction into a WAL file, with the store's journal settings."""
    rng = random.Random(7)
    rows = [(f"{rng.randrange(10**14):014d}", "1071C", "35238", i) for i in range(SQLITE_ROWS)]
    path = directory / f"reference-{os.getpid()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, siret TEXT, naf TEXT, commune TEXT, n INTEGER)")
        conn.execute("CREATE UNIQUE INDEX t_siret ON t (siret)")
        started = time.process_time()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO t (siret, naf, commune, n) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        return 1000 * (time.process_time() - started)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def measure(repeat: int = 5) -> dict[str, float]:
    """The machine's reference figures: the best of `repeat` runs of each workload, with the load average."""
    with tempfile.TemporaryDirectory(prefix="declic-reference-") as directory:
        return {
            "interpreter_ms": round(min(interpreter_ms() for _ in range(repeat)), 1),
            "library_ms": round(min(library_ms() for _ in range(repeat)), 1),
            "sqlite_ms": round(min(sqlite_ms(Path(directory)) for _ in range(repeat)), 1),
            "load_1min": round(os.getloadavg()[0], 2),
        }


if __name__ == "__main__":
    emit(figure="machine_reference", **measure())
