"""Ingest benchmark: Sirene (generated 54-column stock) and BODACC into SQLite, and PostgreSQL by URL.

    python -m bench.bench_ingest                       # 1,000,000 Sirene rows, 100,000 BODACC records
    python -m bench.bench_ingest --quick               # 200,000 rows, 20,000 records
    python -m bench.bench_ingest --postgres postgresql://postgres@127.0.0.1:5432/test
    python -m bench.bench_ingest --rows 5000000 --first-load-only --store sqlite   # the national-stock figure

Prints one JSON object per run and writes them all to bench/results/ingest.json. Per run: wall time and rows/s,
CPU seconds of this process (the writer), of the parser process and, on PostgreSQL, of the server's backends
serving the bench's database (from /proc; parallel index workers are missed: a lower bound), the rows/s the
busiest of them allows on a core of its own, peak memory (max RSS) of this process and of the parser, the load
average before and after, and the machine's busy cores during the run (/proc/stat: the neighbours' share). Runs:
`first load` (empty store), `same file again` (every known row compared, nothing written), the BODACC load, the
legal units (a generated StockUniteLegale file of the same companies: their categories and legal forms), and the
bare baseline on the same file, measured in the same run: on SQLite the csv module reading the file and `sqlite3`
executemany of every raw row (54 text columns, no index, 20,000 rows a transaction), on PostgreSQL one COPY of the
file into a table of 54 text columns. From the first load, the minutes the national stock (43.9 million rows) takes
at the measured rate. Targets (issue 18, point 3): >= 300,000 rows/s into SQLite, >= 150,000 rows/s into PostgreSQL,
peak memory < 1 GB.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.common import machine_busy
from bench.ingest_data import luhn_digit, write_sirene, write_unites
from orchestrator.app.ingest import ingest_bodacc, ingest_sirene, ingest_sirene_ul
from store.db import dispose_engines, get_engine
from store.migrate import upgrade
from triggers import sirene_columnar
from triggers.sirene import COLUMNS_54

TODAY = dt.date(2026, 11, 27)
RESULTS = Path(__file__).parent / "results" / "ingest.json"
NATIONAL_ROWS = 43_900_000  # establishments in INSEE's StockEtablissement, closed ones included


def _usage() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self": me.ru_utime + me.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "rss_self_mb": me.ru_maxrss / 1024,
        "rss_children_mb": kids.ru_maxrss / 1024,
    }


def _loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def _server_cpu(engine) -> float | None:
    """CPU seconds so far of the PostgreSQL processes serving this engine's database (None on SQLite)."""
    if engine is None or engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = [pid for (pid,) in conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                ticks += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])  # utime, stime
        except OSError:
            continue  # ended meanwhile
    return ticks / os.sysconf("SC_CLK_TCK")


def _timed(label: str, fn, engine=None) -> dict:
    """Run `fn` (returns an IngestReport, or a row count) and measure it."""
    load_before = _loadavg()
    before, server_before, busy_before = _usage(), _server_cpu(engine), machine_busy()
    start = time.perf_counter()
    report = fn()
    wall = time.perf_counter() - start
    after, server_after, busy_after = _usage(), _server_cpu(engine), machine_busy()
    read = report if isinstance(report, int) else report.read
    cpu = {"main": after["cpu_self"] - before["cpu_self"], "parser": after["cpu_children"] - before["cpu_children"]}
    if server_before is not None and server_after is not None:
        cpu["server"] = server_after - server_before
    out = {
        "run": label,
        "read": read,
        "seconds": round(wall, 2),
        "rows_per_s": round(read / wall),
        **{f"cpu_{k}_s": round(v, 2) for k, v in cpu.items()},
        # What the processes could do with a core each: the wall figure on a busy machine says more about the
        # neighbours than about the code.
        "cpu_bound_rows_per_s": round(read / max(*cpu.values(), 1e-9)),
        "peak_rss_main_mb": round(after["rss_self_mb"]),
        "peak_rss_parser_mb": round(after["rss_children_mb"]),
        "load_before": load_before,
        "load_after": _loadavg(),
        "machine_busy_cores": round((busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]), 2),
    }
    if "first load" in label:
        out["national_minutes"] = round(NATIONAL_ROWS / out["rows_per_s"] / 60, 1)
    if not isinstance(report, int):
        out["report"] = report.to_dict()
    print(json.dumps({k: v for k, v in out.items() if k != "report"}), flush=True)
    return out


def bodacc_file(path: Path, n: int) -> Path:
    """`n` BODACC records as JSON lines, a realistic mix of families."""
    rng = random.Random(5)
    families = (
        ["dpc"] * 50
        + ["modification"] * 20
        + ["vente"] * 8
        + ["creation"] * 8
        + ["immatriculation"] * 4
        + ["radiation"] * 6
        + ["collective"] * 4
    )

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            body = f"{20_000_000 + i:08d}"
            siren = body + luhn_digit(body)
            family = rng.choice(families)
            rec = {
                "id": f"A2026{i:08d}",
                "dateparution": "2026-11-20",
                "familleavis": family,
                "numerodepartement": "35",
                "tribunal": "GREFFE DE RENNES",
                "ville": "Rennes",
                "cp": "35000",
                "registre": [siren, f"{siren[:3]} {siren[3:6]} {siren[6:]}"],
                "listepersonnes": json.dumps(
                    {
                        "personne": {
                            "typePersonne": "pm",
                            "denomination": f"SOCIETE {i}",
                            "numeroImmatriculation": {"numeroIdentification": siren},
                        }
                    }
                ),
            }
            if family == "collective":
                rec["jugement"] = json.dumps(
                    {
                        "nature": rng.choice(
                            [
                                "Jugement d'ouverture de redressement judiciaire",
                                "Jugement de liquidation judiciaire",
                            ]
                        )
                    }
                )
            fh.write(json.dumps(rec) + "\n")
    return path


# --- the bare baselines: the same file with no Déclic in the way -----------------------------------------------

_RAW_COLUMNS = ", ".join(f'"{c}" TEXT' for c in COLUMNS_54)


def bare_sqlite(path: Path, db: Path) -> int:
    """The csv module reading the file, sqlite3 executemany of every raw row into an unindexed table."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(f"CREATE TABLE raw ({_RAW_COLUMNS})")
    sql = f"INSERT INTO raw VALUES ({', '.join('?' * len(COLUMNS_54))})"
    rows = 0
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 20_000:
                con.executemany(sql, batch)
                con.commit()
                rows += len(batch)
                batch = []
        con.executemany(sql, batch)
        con.commit()
        rows += len(batch)
    con.close()
    return rows


def bare_postgres(path: Path, engine) -> int:
    """One COPY of the file (its bytes as they are) into a table of 54 text columns."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE bare_raw ({_RAW_COLUMNS})")
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy("COPY bare_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    copy.write(block)
            rows = cur.rowcount
        conn.exec_driver_sql("DROP TABLE bare_raw")
    return rows


def run(url: str, sirene: Path, bodacc: Path, unites: Path | None, *, first_only: bool, columnar: bool | None,
        baseline: bool, workdir: Path) -> list[dict]:
    upgrade(url)
    engine = get_engine(url)

    def load():
        return ingest_sirene(engine, sirene, today=TODAY, now=dt.datetime.now(dt.UTC), columnar=columnar)

    pg = engine if engine.dialect.name == "postgresql" else None
    out = [_timed("sirene first load", load, pg)]
    if not first_only:
        out.append(_timed("sirene same file again", load, pg))
        out.append(_timed("bodacc", lambda: ingest_bodacc(engine, bodacc, today=TODAY, now=dt.datetime.now(dt.UTC)),
                          pg))
    if unites is not None:
        out.append(_timed("legal units (StockUniteLegale)",
                          lambda: ingest_sirene_ul(engine, unites, now=dt.datetime.now(dt.UTC), columnar=columnar), pg))
    if baseline:
        if pg is not None:
            out.append(_timed("bare baseline: COPY of the raw file", lambda: bare_postgres(sirene, engine), pg))
        else:
            db = workdir / f"bare-{uuid.uuid4().hex[:6]}.db"
            try:
                out.append(_timed("bare baseline: sqlite3 executemany of the raw rows",
                                  lambda: bare_sqlite(sirene, db)))
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
        out[-1]["ratio_first_load_to_bare"] = round(out[0]["rows_per_s"] / out[-1]["rows_per_s"], 2)
        print(json.dumps({"ratio_first_load_to_bare": out[-1]["ratio_first_load_to_bare"]}), flush=True)
    dispose_engines()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="Sirene rows generated (default 1,000,000)")
    parser.add_argument("--bodacc", type=int, default=None, help="BODACC records (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="200,000 Sirene rows and 20,000 BODACC records")
    parser.add_argument("--postgres", default=os.environ.get("DECLIC_BENCH_POSTGRES_URL"))
    parser.add_argument("--store", choices=("both", "sqlite", "postgresql"), default="both",
                        help="which stores to measure (postgresql needs --postgres)")
    parser.add_argument("--first-load-only", action="store_true",
                        help="only the first load (and the baseline): no second pass, no BODACC")
    parser.add_argument("--reader", choices=("auto", "columnar", "rows"), default="auto",
                        help="Sirene reader: pyarrow's when installed (auto), or one of them")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare baseline")
    parser.add_argument("--unites", type=int, default=None,
                        help="legal units read after the first load (default: two thirds of --rows, as in the "
                        "national stocks; 0: none)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated files here (reused)")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    records = args.bodacc or (20_000 if args.quick else 100_000)
    columnar = {"auto": None, "columnar": True, "rows": False}[args.reader]

    work = args.workdir or Path(tempfile.mkdtemp(prefix="declic-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    sirene = work / f"StockEtablissement_{rows}.csv"
    if not sirene.exists():
        write_sirene(sirene, rows)
    bodacc = work / f"bodacc_{records}.jsonl"
    if not bodacc.exists() and not args.first_load_only:
        bodacc_file(bodacc, records)
    n_unites = rows * 2 // 3 if args.unites is None else args.unites
    unites = work / f"StockUniteLegale_{n_unites}.csv" if n_unites else None
    if unites is not None and not unites.exists():
        write_unites(unites, n_unites)

    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "sirene_rows": rows,
        "sirene_file_mb": round(sirene.stat().st_size / 1e6),
        "reader": "columnar" if (columnar if columnar is not None else sirene_columnar.available()) else "rows",
        "bodacc_records": 0 if args.first_load_only else records,
        "legal_units": n_unites,
    }
    kw = {"first_only": args.first_load_only, "columnar": columnar, "baseline": not args.no_baseline,
          "workdir": work}
    if args.store in ("both", "sqlite"):
        db = work / f"bench-{uuid.uuid4().hex[:6]}.db"
        try:
            results["sqlite"] = run(f"sqlite:///{db}", sirene, bodacc, unites, **kw)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    if args.postgres and args.store in ("both", "postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            sep = "&" if "?" in args.postgres else "?"
            results["postgresql"] = run(f"{args.postgres}{sep}options=-csearch_path%3D{schema}", sirene, bodacc,
                                        unites, **kw)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
