"""PostgreSQL figures for every path (issue 18, point 4), in a database of the bench's own (`declic_bench`).

    python -m bench.bench_postgres            # 100,000 triggers against 400,000 then 4,000,000 businesses, ...
    python -m bench.bench_postgres --quick    # 10,000 triggers against 40,000 then 400,000
    python -m bench postgres                  # the same through the runner (results in bench/results)

What is measured, in order, on one store:
- planning 100,000 new triggers against 400,000 businesses, then the same triggers again once the table holds
  4,000,000 (target: under 30 s, at most 1.5 times the time at 400,000);
- segment previews over the 4 M (target: under 1 s), a national "reachable" segment included;
- a scheduled occurrence reaching 400,000 businesses, planned in batches (target: under 60 s);
- e-mail dispatch with two dispatcher processes to the aiosmtpd sink, 10,000 e-mails (target: 1,000/s), in a
  fresh schema of the same database (`bench.bench_email`).

The businesses and the trigger events are loaded with PostgreSQL COPY (psycopg's `copy`), secondary indexes
dropped during a load and built once afterwards, then VACUUM ANALYZE (what autovacuum does on a live store;
index-only scans need the visibility map). Every figure carries the machine's load average (/proc/loadavg)
before and after it: the machine is shared. The database is created at the start (dropped first if a run was
interrupted) and dropped at the end unless `--keep`.

The occurrence alone, again and again on the same data (to compare two versions of the code in the same minutes):
a first full run saves the store as it stands just before the occurrence in a template database, and each
`--part occurrence` run starts from a fresh copy of it (a few seconds: `CREATE DATABASE ... TEMPLATE`):

    python -m bench.bench_postgres --part planning --database declic_bench_occ --snapshot declic_bench_occ_t
    python -m bench.bench_postgres --part occurrence --database declic_bench_occ --snapshot declic_bench_occ_t
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.bench_planning import (  # noqa: E402
    COLUMNS,
    NOW,
    apply_occurrence_campaign,
    population_rows,
    prepared_app,
    preview_segments,
)
from bench.common import emit, scratch_env  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "declic_bench"
STAMP = "2026-11-01 00:00:00+00"
# Tables the planner writes: emptied to plan the same triggers again (CASCADE: the rows that point at them).
PLANNING_TABLES = ("messageevent", "interaction", "message", "coverage", "enrollment", "campaignoccurrence")


def loadavg() -> str:
    """The machine's 1, 5 and 15-minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def create_database(server: str, name: str, template: str | None = None) -> str:
    """A new database `name` (an earlier one of that name dropped first), empty or a copy of `template`; its URL.
    No session may be connected to `template` meanwhile."""
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        copied = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    admin.dispose()
    return f"{server}/{name}"


def copy_database(server: str, template: str, name: str) -> str:
    """`create_database` from `template`, after closing this process's own sessions (to it among others)."""
    from store.db import dispose_engines

    dispose_engines()
    return create_database(server, name, template)


def drop_database(server: str, name: str) -> None:
    from store.db import dispose_engines

    dispose_engines()
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def copy_population(engine, start: int, n: int, rng: random.Random, communes, nafs) -> float:
    """COPY n businesses (ids start + 1 ...) with the secondary indexes dropped, then rebuilt; returns seconds."""
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        indexes = raw.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'business' "
            "AND i.schemaname = current_schema() AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)").fetchall()
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')
        with raw.cursor() as cur:
            with cur.copy(f"COPY business ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in population_rows(start, n, rng, communes, nafs):
                    copy.write_row(row[:-2] + (STAMP, STAMP))
        raw.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, create in indexes:
            raw.execute(create)
        raw.execute("SELECT setval(pg_get_serial_sequence('business', 'id'), (SELECT max(id) FROM business))")
    return time.perf_counter() - started


def copy_events(engine, business_ids: list[int], rng: random.Random) -> None:
    """One accepted, unplanned trigger event per id (creation mostly, first hire for a fifth), by COPY."""
    columns = "source, external_id, type, siret, business_id, occurred_on, received_at, status, planned, payload"
    with engine.begin() as conn:
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY triggerevent ({columns}) FROM STDIN") as copy:
                for n, b in enumerate(business_ids):
                    copy.write_row(("bench", f"ev-{n}", "first_hire" if n % 5 == 0 else "creation", f"{b:014d}",
                                    b, (NOW.date() - dt.timedelta(days=rng.randrange(10))).isoformat(), STAMP,
                                    "accepted", False, "{}"))


def vacuum_analyze(engine) -> None:
    """What autovacuum would have done by now on a live store: statistics and the visibility map. (This machine's
    server runs with autovacuum off: without it, tables filled during a run keep the statistics of when they
    were empty.)"""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def autovacuum(engine) -> str:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SHOW autovacuum").scalar()


def reset_planning(engine) -> None:
    """Forget every planning decision (the same triggers planned again)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(PLANNING_TABLES)} CASCADE")
        conn.exec_driver_sql("UPDATE triggerevent SET planned = false")


def server_cpu(engine) -> float:
    """CPU seconds so far of the PostgreSQL backends serving the bench's database (/proc: the server is local;
    short-lived parallel workers are missed, so it is a lower bound)."""
    with engine.connect() as conn:
        pids = conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database()").all()
    total = 0
    for (pid,) in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def checkpoints(engine) -> tuple[int, int, int, int]:
    """The server's checkpoints so far, (requested, timed), and the WAL it wrote, (bytes, full-page images):
    requested checkpoints during a run mean the WAL it wrote outgrew `max_wal_size`, and after each one the
    first change to every page writes the whole page to the WAL again (pg_stat_bgwriter, pg_stat_wal: the
    whole server's, other databases included)."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT checkpoints_req, checkpoints_timed FROM pg_stat_bgwriter").one()
        wal = conn.exec_driver_sql("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").one()
    return int(row[0]), int(row[1]), int(wal[0]), int(wal[1])


def wal_settings(engine) -> str:
    with engine.connect() as conn:
        return ", ".join(f"{name}={conn.exec_driver_sql(f'SHOW {name}').scalar()}"
                         for name in ("max_wal_size", "checkpoint_timeout", "shared_buffers"))


def timed_plan(app) -> tuple[float, float, dict]:
    """Wall and CPU seconds of `plan_all` (this process's CPU; PostgreSQL's in SERVER_CPU["last"])."""
    from orchestrator.app.planning import plan_all

    server = server_cpu(app.engine)
    started, cpu = time.perf_counter(), time.process_time()
    counts = plan_all(app, now=NOW)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    SERVER_CPU["last"] = server_cpu(app.engine) - server
    return elapsed, cpu, dict(counts)


SERVER_CPU: dict[str, float] = {}


def preview(engine, segment: dict, territory=None) -> tuple[float, int, str]:
    """Seconds of `segment_counts`, the businesses it counts, and the plan PostgreSQL chose for it."""
    from segments.language import parse_segment
    from store.planning import segment_counts

    with engine.connect() as conn:
        started = time.perf_counter()
        rows = segment_counts(conn, parse_segment(segment), today=NOW.date(), territory=territory)
        seconds = time.perf_counter() - started
    return seconds, sum(r[-1] for r in rows), explain(engine, segment, territory)


def explain(engine, segment: dict, territory=None) -> str:
    """The scan nodes of the preview's plan ("Index Only Scan using ix_... / Seq Scan on business"), for the
    record: whether the index serves it."""
    from sqlalchemy import and_, func, select

    from segments.language import parse_segment
    from store.planning import BUSINESS
    from store.segment_sql import compile_segment

    group = [BUSINESS.c.metier_family, BUSINESS.c.departement_code]
    stmt = select(*group, func.count()).where(and_(compile_segment(parse_segment(segment), today=NOW.date(),
                                                                   territory=territory))).group_by(*group)
    with engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        lines = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}")]
    scans = [line.strip().lstrip("->").strip().split("  (")[0] for line in lines if "Scan" in line]
    return "; ".join(scans)


def planning(args, url: str) -> None:
    small, large, triggers = (40_000, 400_000, 10_000) if args.quick else (400_000, 4_000_000, 100_000)
    scratch_env(url)
    app, rng, communes, nafs = prepared_app(url)

    load = loadavg()
    seconds = copy_population(app.engine, 0, small, rng, communes, nafs)
    copy_events(app.engine, rng.sample(range(1, small + 1), triggers), rng)
    vacuum_analyze(app.engine)
    emit(figure="pg_population_copied_per_s", value=round(small / seconds), businesses=small,
         seconds=round(seconds, 1), load_before=load, load_after=loadavg())

    load = loadavg()
    t_small, cpu_small, counts_small = timed_plan(app)
    emit(figure="pg_plan_triggers_seconds", value=round(t_small, 2), cpu_seconds=round(cpu_small, 2),
         server_cpu_seconds=round(SERVER_CPU["last"], 2), triggers=triggers, businesses=small,
         enrolled=counts_small.get("enrolled", 0), messages=counts_small.get("messages", 0),
         skipped=counts_small.get("skipped", 0), store="postgresql",
         load_before=load, load_after=loadavg())

    load = loadavg()
    seconds = copy_population(app.engine, small, large - small, rng, communes, nafs)
    reset_planning(app.engine)
    vacuum_analyze(app.engine)
    emit(figure="pg_population_copied_per_s", value=round((large - small) / seconds), businesses=large - small,
         seconds=round(seconds, 1), load_before=load, load_after=loadavg())

    load = loadavg()
    t_large, cpu_large, counts_large = timed_plan(app)
    emit(figure="pg_plan_triggers_seconds", value=round(t_large, 2), cpu_seconds=round(cpu_large, 2),
         server_cpu_seconds=round(SERVER_CPU["last"], 2), triggers=triggers, businesses=large,
         enrolled=counts_large.get("enrolled", 0), messages=counts_large.get("messages", 0),
         skipped=counts_large.get("skipped", 0), store="postgresql",
         target_seconds=30, load_before=load, load_after=loadavg())
    emit(figure="pg_plan_time_ratio_large_vs_small", value=round(t_large / t_small, 2),
         cpu_ratio=round(cpu_large / cpu_small, 2), small=small, large=large, target=1.5)
    assert counts_small.get("enrolled") == counts_large.get("enrolled"), (counts_small, counts_large)

    national = ("national_reachable_families", {"families": ["batiment"], "reachable": ["email", "phone", "postal"]},
                None)
    for label, segment, territory in [*preview_segments(), national]:
        load = loadavg()
        runs = [preview(app.engine, segment, territory) for _ in range(3)]
        seconds = [r[0] for r in runs]
        emit(figure="pg_segment_preview_seconds", value=round(statistics.median(seconds), 3),
             runs=[round(s, 3) for s in seconds], scope=label, businesses=large, selected=runs[0][1],
             plan=runs[0][2], target_seconds=1, load_before=load, load_after=loadavg())

    vacuum_analyze(app.engine)  # the triggered planning's 77,000 messages, as autovacuum would have seen them
    if args.snapshot:
        app.close()
        copy_database(args.server, args.database, args.snapshot)
        app = bootstrap_app(url)
    scheduled_occurrence(app, args, large)
    app.close()


def bootstrap_app(url: str):
    """The App of a store prepared earlier (its registry and campaigns already in), on the bench's clock."""
    from orchestrator.app.bootstrap import bootstrap
    from store.migrate import upgrade

    scratch_env(url)
    upgrade(url)
    return bootstrap(clock=lambda: NOW)


def occurrence_only(args) -> None:
    """The occurrence alone, in a fresh copy of the store saved by an earlier `--snapshot` run."""
    url = copy_database(args.server, args.snapshot, args.database)
    app = bootstrap_app(url)
    with app.engine.connect() as conn:
        businesses = conn.exec_driver_sql("SELECT count(*) FROM business").scalar()
    scheduled_occurrence(app, args, businesses)
    app.close()


def scheduled_occurrence(app, args, businesses: int) -> None:
    """A monthly campaign over a few départements reaching about 400,000 businesses, planned in batches."""
    target = 40_000 if args.quick else 400_000
    chosen, reach = apply_occurrence_campaign(app, target)
    load = loadavg()
    before = checkpoints(app.engine)
    seconds, cpu, counts = timed_plan(app)
    after = checkpoints(app.engine)
    emit(figure="pg_scheduled_occurrence_seconds", value=round(seconds, 2), cpu_seconds=round(cpu, 2),
         server_cpu_seconds=round(SERVER_CPU["last"], 2),
         reached=reach, departements=len(chosen), enrolled=counts.get("occurrence_enrolled", 0),
         messages=counts.get("occurrence_messages", 0), batches=-(-reach // app.settings.plan_batch_size),
         businesses=businesses, store="postgresql", target_seconds=60, load_before=load, load_after=loadavg(),
         server_autovacuum=autovacuum(app.engine), server_checkpoints_requested=after[0] - before[0],
         server_checkpoints_timed=after[1] - before[1], server_wal_mb=round((after[2] - before[2]) / 2**20),
         server_wal_full_pages=after[3] - before[3], server_settings=wal_settings(app.engine))


def email(args, url: str) -> None:
    """Two dispatcher processes on one outbox in a fresh schema of the bench's database (bench.bench_email)."""
    from bench.bench_email import one_run

    n, repeat = (2_000, 1) if args.quick else (10_000, args.repeat)
    runs = []
    for _ in range(repeat):
        load = loadavg()
        run = one_run(n, 2, url, 4)
        runs.append({**run, "load_before": load, "load_after": loadavg()})
    rates = [r["rate"] for r in runs]
    emit(figure="pg_email_two_dispatchers_per_s", value=round(statistics.median(rates)), best=round(max(rates)),
         runs=[round(x) for x in rates], messages=n, workers=2, connections=4, store="postgresql", target=1000,
         duplicates=sum(r["duplicates"] for r in runs), received=[r["received"] for r in runs],
         others_cores=[round(r["others_cores"], 2) for r in runs],
         dispatcher_cpu_ms_per_message=round(statistics.median(r["ours_cpu_ms"] for r in runs), 3),
         sink_cpu_ms_per_message=round(statistics.median(r["sink_cpu_ms"] for r in runs), 3),
         load=[f"{r['load_before']} -> {r['load_after']}" for r in runs])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_postgres")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, one e-mail run")
    parser.add_argument("--server", default=SERVER, help="PostgreSQL server URL, without a database")
    parser.add_argument("--database", default=DATABASE, help="the bench's own database (created, then dropped)")
    parser.add_argument("--part", choices=("all", "planning", "occurrence", "email"), default="all",
                        help="occurrence: the scheduled occurrence alone, in a copy of --snapshot")
    parser.add_argument("--snapshot", help="template database: the store just before the occurrence, saved by "
                        "a planning run, copied by each occurrence run")
    parser.add_argument("--repeat", type=int, default=3, help="e-mail runs (the machine is shared)")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args(argv)
    if args.part == "occurrence":
        if not args.snapshot:
            parser.error("--part occurrence needs --snapshot (saved by an earlier planning run)")
        try:
            occurrence_only(args)
        finally:
            if not args.keep:
                drop_database(args.server, args.database)
        return
    url = create_database(args.server, args.database)
    try:
        if args.part in ("all", "planning"):
            planning(args, url)
        if args.part in ("all", "email"):
            email(args, url)
    finally:
        if not args.keep:
            drop_database(args.server, args.database)


if __name__ == "__main__":
    main(sys.argv[1:])
