"""Planning benchmark: the cost of planning follows the new triggers, not the population.

    python -m bench.bench_planning            # 100,000 triggers against 250,000 then 2,500,000 businesses
    python bench/bench_planning.py --quick    # 10,000 triggers against 25,000 then 250,000

Figures (JSON lines): planning time of the same triggers at both population sizes and their ratio
(target: under 30 s at 2.5 M on SQLite, ratio at most 1.5), segment preview over the whole population
(target under 2 s), and a scheduled occurrence reaching about 100,000 businesses, planned in batches.
The population is written with executemany of plain tuples (not one ORM object per row).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, scratch_env  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # a Tuesday, 09:00 in Paris
STAMP = "2026-11-01 00:00:00.000000"
COLUMNS = ("id", "siret", "siren", "name", "naf_code", "metier_family", "commune_code", "epci_code",
           "departement_code", "region_code", "tranche_effectifs", "employer", "creation_date", "state",
           "do_not_contact", "lifecycle_stage", "digital_maturity", "email", "phone", "phone_consent", "street",
           "postal_code", "city", "created_at", "updated_at")
TRANCHES = ("NN", "00", "00", "01", "01", "02", "03", "11", "12", None)
STAGES = ("creation", "first_hires", "consolidation", "consolidation", "critical_period", None)


def reference():
    """Current communes with their territories, and NAF sub-classes with their family."""
    from segments.taxonomy import naf_entries
    from segments.territory import _current_communes

    communes = [(c.code, c.epci, c.departement, c.region) for c in _current_communes().values()]
    nafs = [(code, e.family) for code, e in naf_entries().items()]
    return communes, nafs


def population_rows(start: int, n: int, rng: random.Random, communes, nafs):
    """n business rows as tuples, ids from `start` + 1."""
    for i in range(start + 1, start + n + 1):
        commune, epci, dep, region = communes[rng.randrange(len(communes))]
        naf, family = nafs[rng.randrange(len(nafs))]
        r = rng.random()
        created = dt.date(2006, 1, 1) + dt.timedelta(days=rng.randrange(7600))
        yield (i, f"{i:014d}", f"{i:09d}", f"Entreprise {i}", naf, family, commune, epci, dep, region,
               TRANCHES[i % len(TRANCHES)], i % 3 == 0, created.isoformat(), "active" if r > 0.03 else "closed",
               r < 0.05, STAGES[i % len(STAGES)], None if r > 0.2 else i % 6,
               f"contact{i}@exemple.fr" if r < 0.6 else None, f"+336{i % 100_000_000:08d}" if r > 0.5 else None,
               r > 0.9, f"{i % 200} rue du Port" if r < 0.85 else None, "35000", "Ville", STAMP, STAMP)


def insert_population(engine, start: int, n: int, rng: random.Random, communes, nafs) -> float:
    """Write n businesses (secondary indexes dropped during the load, then rebuilt); returns seconds."""
    started = time.perf_counter()
    sql = f"INSERT INTO business ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    rows = population_rows(start, n, rng, communes, nafs)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        indexes = raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                              "AND tbl_name = 'business' AND sql IS NOT NULL").fetchall()
        for name, _ in indexes:
            raw.execute(f"DROP INDEX {name}")
        while True:
            chunk = [next(rows, None) for _ in range(100_000)]
            chunk = [c for c in chunk if c is not None]
            if not chunk:
                break
            raw.executemany(sql, chunk)
        for _, create in indexes:
            raw.execute(create)
    return time.perf_counter() - started


def insert_events(engine, business_ids: list[int], rng: random.Random) -> None:
    """One trigger event per id: creation mostly, first hire for a fifth."""
    sql = ("INSERT INTO triggerevent (source, external_id, type, siret, business_id, occurred_on, received_at, "
           "status, planned, payload) VALUES (?, ?, ?, ?, ?, ?, ?, 'accepted', 0, '{}')")
    rows = [("bench", f"ev-{n}", "first_hire" if n % 5 == 0 else "creation", f"{b:014d}", b,
             (NOW.date() - dt.timedelta(days=rng.randrange(10))).isoformat(), STAMP)
            for n, b in enumerate(business_ids)]
    with engine.begin() as conn:
        conn.connection.driver_connection.executemany(sql, rows)


def reset_planning(engine) -> None:
    """Forget every planning decision (same triggers planned again)."""
    with engine.begin() as conn:
        for table in ("messageevent", "interaction", "message", "enrollment", "campaignoccurrence"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql("UPDATE triggerevent SET planned = 0")


def registry(engine, rng: random.Random) -> None:
    """Ambassadors (3,000, by département) and offers (400) through the CSV importers."""
    from segments.taxonomy import families
    from segments.territory import departements
    from store.journeys import import_ambassadors, import_offers

    fams = list(families())
    deps = [d for d in departements() if len(d) <= 3 and d not in ("975", "977", "978", "984", "986", "987",
                                                                 "988", "989")]
    lines = ["key,name,metier,families,communes,epci,departements,channels,phone,email,commune,monthly_capacity"]
    for i in range(3000):
        lines.append(f"a{i},Ambassadeur {i},artisan,{rng.choice(fams)},,,{rng.choice(deps)},phone,"
                     f"+33611{i:06d},,,{rng.choice([5, 20, 50])}")
    imported, rejects = import_ambassadors(engine, "\n".join(lines) + "\n", now=NOW)
    assert imported == 3000 and not rejects, rejects[:3]
    kinds = ("diagnostic", "formation_courte", "accompagnement", "coup_de_pouce", "financement")
    lines = ["key,title,provider,kind,families,territory,format,duration,hours,price,url"]
    for i in range(400):
        territory = f"departement:{rng.choice(deps)}" if i % 4 else ""
        lines.append(f"o{i},Offre {i},CMA,{rng.choice(kinds)},{rng.choice(fams)}|{rng.choice(fams)},{territory},"
                     f"sur_place,2 h,sur rendez-vous,gratuit,")
    imported, rejects = import_offers(engine, "\n".join(lines) + "\n", now=NOW)
    assert imported == 400 and not rejects, rejects[:3]


def campaigns(engine) -> None:
    """Three triggered campaigns of realistic shape (national, a région's building trades, first hires)."""
    from orchestrator.core.campaign_spec import load_spec
    from segments.territory import regions
    from store.admin import apply_campaign

    every_region = sorted(regions())
    base = {"sender": {"name": "Réseau Déclic", "address": "1 place de la République, 75003 Paris"},
            "contact": {"name": "Conseil numérique", "phone": "01 00 00 00 00"}}
    apply_campaign(engine, load_spec({
        **base, "name": "bienvenue-france", "owner": {"name": "État", "territory": {"regions": every_region}},
        "triggers": ["creation"], "holdout": 10, "variants": [{"name": "court"}, {"name": "temoignage"}],
        "segment": {"reachable": ["email", "phone", "postal"], "converted": False},
        "steps": [{"channel": "email", "delay": "2d", "template": "creation"},
                  {"channel": "email", "delay": "7d", "template": "creation", "if": "no_click"},
                  {"channel": "letter", "delay": "14d", "template": "creation"}]}), now=NOW)
    apply_campaign(engine, load_spec({
        **base, "name": "batiment-bretagne", "owner": {"name": "Région Bretagne", "territory": {"regions": ["53"]}},
        "triggers": ["creation"], "segment": {"families": ["batiment"], "headcount": ["0", "1-2", "unknown"]},
        "steps": [{"channel": "sms", "delay": "1d", "template": "creation"}]}), now=NOW)
    apply_campaign(engine, load_spec({
        **base, "name": "premiere-embauche", "owner": {"name": "État", "territory": {"regions": every_region}},
        "triggers": ["first_hire"], "segment": {"headcount": ["0", "1-2", "3-5", "unknown"]},
        "steps": [{"channel": "email", "delay": "0d", "template": "first_hire"}]}), now=NOW)


CPU: dict[str, float] = {}


def timed_plan(app) -> tuple[float, dict]:
    """Wall seconds of `plan_all` (its CPU seconds in CPU["last"]: the machine may be shared)."""
    from orchestrator.app.planning import plan_all

    started, cpu = time.perf_counter(), time.process_time()
    counts = plan_all(app, now=NOW)
    CPU["last"] = time.process_time() - cpu
    return time.perf_counter() - started, dict(counts)


def preview(engine, segment: dict, territory=None) -> tuple[float, int]:
    from segments.language import parse_segment
    from store.planning import segment_counts

    started, cpu = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        rows = segment_counts(conn, parse_segment(segment), today=NOW.date(), territory=territory)
    CPU["last"] = time.process_time() - cpu
    return time.perf_counter() - started, sum(r[-1] for r in rows)


def prepared_app(url: str):
    """A migrated store with the reference data, the registry and the campaigns, and its App on the bench's clock;
    with the random generator and the reference lists the population is drawn from."""
    from orchestrator.app.bootstrap import bootstrap
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(url)
    app = bootstrap(clock=lambda: NOW)
    load_reference(app.engine)
    rng = random.Random(2026)
    communes, nafs = reference()
    registry(app.engine, rng)
    campaigns(app.engine)
    return app, rng, communes, nafs


def preview_segments():
    """The segments previewed over the whole population: (label, segment, territory)."""
    from segments.language import TerritoryFilter

    return [
        ("departement", {"families": ["batiment", "alimentation"], "reachable": ["email"]},
         TerritoryFilter(departements=["35"])),
        ("region", {"families": ["batiment"], "converted": False}, TerritoryFilter(regions=["84"])),
        ("national_families", {"families": ["batiment", "alimentation"]}, None),
        ("national_reachable", {"reachable": ["email", "phone"]}, None),
    ]


def apply_occurrence_campaign(app, target: int) -> tuple[list[str], int]:
    """A monthly campaign over the largest départements until about `target` businesses: (départements, reach)."""
    from orchestrator.core.campaign_spec import load_spec
    from store.admin import apply_campaign

    with app.engine.connect() as conn:
        per_dep = conn.exec_driver_sql(
            "SELECT departement_code, count(*) FROM business GROUP BY departement_code ORDER BY 2 DESC").all()
    chosen, reach = [], 0
    for dep, count in per_dep:
        if reach >= target:
            break
        if len(dep) == 2:
            chosen.append(dep)
            reach += count
    apply_campaign(app.engine, load_spec({
        "name": "atelier-trimestriel", "owner": {"name": "Collectivités", "territory": {"departements": chosen}},
        "sender": {"name": "Collectivités", "address": "Hôtel de ville"}, "contact": {"name": "Accueil"},
        "schedule": {"start": "2026-12-01T09:00:00", "rrule": "FREQ=MONTHLY;BYDAY=1TU"},
        "steps": [{"channel": "email", "delay": "0d", "template": "creation"}]}), now=app.now())
    return chosen, reach


def main(quick: bool = False) -> None:
    small, large, triggers = (25_000, 250_000, 10_000) if quick else (250_000, 2_500_000, 100_000)
    env = scratch_env()
    app, rng, communes, nafs = prepared_app(env["DECLIC_DATABASE_URL"])

    seconds = insert_population(app.engine, 0, small, rng, communes, nafs)
    emit(figure="population_written_per_s", value=round(small / seconds), businesses=small, seconds=round(seconds, 1))
    insert_events(app.engine, rng.sample(range(1, small + 1), triggers), rng)
    with app.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")

    t_small, counts_small = timed_plan(app)
    cpu_small = CPU["last"]
    emit(figure="plan_triggers_seconds", value=round(t_small, 2), cpu_seconds=round(cpu_small, 2),
         triggers=triggers, businesses=small,
         enrolled=counts_small.get("enrolled", 0), messages=counts_small.get("messages", 0),
         skipped=counts_small.get("skipped", 0), store="sqlite")

    seconds = insert_population(app.engine, small, large - small, rng, communes, nafs)
    emit(figure="population_written_per_s", value=round((large - small) / seconds), businesses=large - small,
         seconds=round(seconds, 1))
    reset_planning(app.engine)
    with app.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    t_large, counts_large = timed_plan(app)
    cpu_large = CPU["last"]
    emit(figure="plan_triggers_seconds", value=round(t_large, 2), cpu_seconds=round(cpu_large, 2),
         triggers=triggers, businesses=large,
         enrolled=counts_large.get("enrolled", 0), messages=counts_large.get("messages", 0),
         skipped=counts_large.get("skipped", 0), store="sqlite", target_seconds=30)
    emit(figure="plan_time_ratio_large_vs_small", value=round(t_large / t_small, 2),
         cpu_ratio=round(cpu_large / cpu_small, 2), small=small, large=large, target=1.5)
    assert counts_small.get("enrolled") == counts_large.get("enrolled"), (counts_small, counts_large)

    for label, segment, territory in preview_segments():
        seconds, total = preview(app.engine, segment, territory)
        emit(figure="segment_preview_seconds", value=round(seconds, 2), cpu_seconds=round(CPU["last"], 2),
             scope=label, businesses=large,
             selected=total, target_seconds=2)

    # A scheduled occurrence reaching about 100,000 businesses (a few départements), planned in batches.
    target = 100_000 if not quick else 10_000
    chosen, reach = apply_occurrence_campaign(app, target)
    seconds, counts = timed_plan(app)
    emit(figure="scheduled_occurrence_seconds", value=round(seconds, 2), cpu_seconds=round(CPU["last"], 2),
         reached=reach,
         enrolled=counts.get("occurrence_enrolled", 0), messages=counts.get("occurrence_messages", 0),
         batches=-(-reach // app.settings.plan_batch_size), businesses=large, store="sqlite")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
