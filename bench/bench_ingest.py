"""Ingest benchmark: Sirene (generated 54-column stock) and BODACC into SQLite, and PostgreSQL by URL.

    python -m bench.bench_ingest                       # 1,000,000 Sirene rows, 100,000 BODACC records
    python -m bench.bench_ingest --rows 200000 --quick # smaller
    python -m bench.bench_ingest --postgres postgresql://postgres@127.0.0.1:5432/test

Prints one JSON object and writes it to bench/results/ingest.json. Figures: wall time and rows/s,
CPU seconds of this process and of the parser process (and the rows/s they allow when each has a
core: on a shared machine the wall time mostly measures the neighbours), peak memory (max RSS) of
each, and the load average at the start. Runs:
`first load` (empty store), `same file again` (every known row compared, nothing written), and the
BODACC load. Targets (issue 3): Sirene >= 100,000 rows/s end to end into SQLite, peak memory under
500 MB; BODACC >= 20,000 records/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.ingest_data import write_sirene
from orchestrator.app.ingest import ingest_bodacc, ingest_sirene
from store.db import dispose_engines, get_engine
from store.migrate import upgrade

TODAY = dt.date(2026, 11, 27)
RESULTS = Path(__file__).parent / "results" / "ingest.json"


def _usage() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self": me.ru_utime + me.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "rss_self_mb": me.ru_maxrss / 1024,
        "rss_children_mb": kids.ru_maxrss / 1024,
    }


def _timed(label: str, fn) -> dict:
    before = _usage()
    start = time.perf_counter()
    report = fn()
    wall = time.perf_counter() - start
    after = _usage()
    cpu_main = after["cpu_self"] - before["cpu_self"]
    cpu_parser = after["cpu_children"] - before["cpu_children"]
    out = {
        "run": label,
        "read": report.read,
        "seconds": round(wall, 2),
        "rows_per_s": round(report.read / wall),
        "cpu_main_s": round(cpu_main, 2),
        "cpu_parser_s": round(cpu_parser, 2),
        # What the two processes could do with a core each: the wall figure on a busy machine says
        # more about the neighbours than about the code.
        "cpu_bound_rows_per_s": round(report.read / max(cpu_main, cpu_parser, 1e-9)),
        "peak_rss_main_mb": round(after["rss_self_mb"]),
        "peak_rss_parser_mb": round(after["rss_children_mb"]),
        "report": report.to_dict(),
    }
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
    from bench.ingest_data import luhn_digit

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


def run(url: str, sirene: Path, bodacc: Path) -> list[dict]:
    upgrade(url)
    engine = get_engine(url)
    out = [
        _timed("sirene first load", lambda: ingest_sirene(engine, sirene, today=TODAY)),
        _timed("sirene same file again", lambda: ingest_sirene(engine, sirene, today=TODAY)),
        _timed("bodacc", lambda: ingest_bodacc(engine, bodacc, today=TODAY)),
    ]
    dispose_engines()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bodacc", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("DECLIC_BENCH_POSTGRES_URL"))
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated files here (reused)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="declic-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    sirene = work / f"StockEtablissement_{args.rows}.csv"
    if not sirene.exists():
        write_sirene(sirene, args.rows)
    bodacc = work / f"bodacc_{args.bodacc}.jsonl"
    if not bodacc.exists():
        bodacc_file(bodacc, args.bodacc)

    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "sirene_rows": args.rows,
        "sirene_file_mb": round(sirene.stat().st_size / 1e6),
        "bodacc_records": args.bodacc,
    }
    db = work / f"bench-{uuid.uuid4().hex[:6]}.db"
    results["sqlite"] = run(f"sqlite:///{db}", sirene, bodacc)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            sep = "&" if "?" in args.postgres else "?"
            results["postgresql"] = run(
                f"{args.postgres}{sep}options=-csearch_path%3D{schema}", sirene, bodacc
            )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
