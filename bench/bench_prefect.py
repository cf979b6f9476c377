"""Prefect benchmarks: the flow's overhead, two workers against one, event-to-planning latency.

    python -m bench.bench_prefect [--quick] [--part overhead|workers|latency|latency-serve ...]

- overhead: 10,000 e-mails dispatched by `dispatch_flow` (in-process, warm Prefect) against the same work
  called as a plain function (`dispatch_all`, which the flow's tasks call); store on PostgreSQL,
  a real SMTP server on loopback. The outbox is reset between rounds, so every round sends the same rows.
- workers: a Prefect server on PostgreSQL (scripts/scale_out.py), two process workers; one dispatch run on
  one worker, then two runs at once on two workers, over the same 10,000 e-mails. The rate compared is the
  steady delivery rate at the SMTP server (from 10 % to 90 % of the round's deliveries); the rate from the
  first run's start to the last run's end (Prefect's timestamps) and the machine's busy cores in that
  window are reported beside it. Run once with the SMTP server answering at once
  (everything competes for two cores) and once with a relay that answers each message after 20 ms.
- latency: the same cluster (one worker, with then without the warm `declic planner`) plus the web app;
  20 partner batches POSTed one after the other; for each, the time from the POST to the plan run's start
  (RUNNING) as the Prefect server records it, with the median time to the run's creation (event trigger),
  pick-up (PENDING) and start.
- latency-serve: the same with `declic serve` on one machine (local Prefect server on SQLite), where plan
  runs are executed warm in the serve process (orchestrator/prefect/warm.py).

Each figure is one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import delete, select, update

from orchestrator.app.bootstrap import bootstrap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BusySampler, emit  # noqa: E402
from integrations.smtp_sink import SmtpSink, free_port  # noqa: E402
from scripts.scale_out import Cluster, drop_database, ensure_database  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def _store_app(url: str, smtp_port: int, home: Path):
    from orchestrator.app.bootstrap import bootstrap
    from orchestrator.app.settings import Settings

    return bootstrap(Settings(home=home, database_url=url, secret_key=SECRET, smtp_port=smtp_port))


def _init_store(url: str) -> None:
    from store.db import get_engine
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(url)
    load_reference(get_engine(url))


def reset_outbox(engine, ids: list[int]) -> None:
    """Put the seeded messages back to planned, as before their first dispatch."""
    from store.models import Message, MessageEvent

    m, h = Message.__table__, MessageEvent.__table__
    with engine.begin() as conn:
        for start in range(0, len(ids), 5000):
            part = ids[start : start + 5000]
            conn.execute(
                update(m)
                .where(m.c.id.in_(part))
                .values(
                    status="planned",
                    attempts=0,
                    lease_owner=None,
                    lease_until=None,
                    sent_at=None,
                    rfc_message_id=None,
                    provider_id=None,
                    last_error=None,
                )
            )
            conn.execute(delete(h).where(h.c.message_id.in_(part), h.c.status != "planned"))


def seeded(app, n: int) -> tuple[dt.datetime, list[int]]:
    from scripts.seed import seed_due_emails
    from store.models import Message

    clock = seed_due_emails(app, n)
    with app.engine.connect() as conn:
        ids = conn.execute(select(Message.id).where(Message.status == "planned")).scalars().all()
    return clock, list(ids)


# --- overhead ---


def part_overhead(n: int, rounds: int) -> None:
    db = f"bench_overhead_{uuid.uuid4().hex[:6]}"
    ensure_database(db)
    url = PG.format(db=db)
    home = Path(tempfile.mkdtemp(prefix="declic-bench-"))
    from orchestrator.app.settings import prepare_prefect_env

    prepare_prefect_env(home)  # quiet local Prefect, patient start-up on a busy machine
    try:
        _init_store(url)
        with SmtpSink(keep=False) as sink:
            os.environ.update(
                {
                    "DECLIC_DATABASE_URL": url,
                    "DECLIC_SECRET_KEY": SECRET,
                    "DECLIC_SMTP_PORT": str(sink.port),
                    "DECLIC_HOME": str(home),
                }
            )
            app = _store_app(url, sink.port, home)
            started = time.perf_counter()
            clock, ids = seeded(app, n)
            emit(
                bench="prefect",
                figure="seed_due_emails",
                messages=len(ids),
                seconds=round(time.perf_counter() - started, 1),
            )

            from orchestrator.app.dispatch import dispatch_all
            from orchestrator.prefect.flows import dispatch_flow, run_once

            cold = time.perf_counter()
            run_once(dispatch_flow, now="2000-01-01T00:00:00+00:00")  # nothing due: starts Prefect, warms up
            emit(bench="prefect", figure="prefect_local_start", seconds=round(time.perf_counter() - cold, 2))

            variants = {
                "flow": lambda: run_once(dispatch_flow, now=clock.isoformat()).get("sent", 0),
                "plain_dispatch_all": lambda: dispatch_all(app, now=clock).get("sent", 0),
            }
            times: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(rounds):
                for name, run in variants.items():
                    reset_outbox(app.engine, ids)
                    before = sink.received
                    t0 = time.perf_counter()
                    sent = run()
                    times[name].append(time.perf_counter() - t0)
                    if sent != len(ids) or sink.received - before != len(ids):
                        raise RuntimeError(
                            f"{name}: sent {sent}, received {sink.received - before} of {len(ids)}"
                        )
            for name, values in times.items():
                best = min(values)
                emit(
                    bench="prefect",
                    figure=f"dispatch_{name}",
                    messages=len(ids),
                    seconds=round(best, 2),
                    per_second=round(len(ids) / best),
                    runs=[round(v, 2) for v in values],
                )
            flow, plain = min(times["flow"]), min(times["plain_dispatch_all"])
            emit(bench="prefect", figure="prefect_overhead", percent=round(100 * (flow / plain - 1), 1),
                 target_percent=10, compared="dispatch_flow vs dispatch_all, best of the rounds")
            app.close()
    finally:
        from store.db import dispose_engines

        dispose_engines()
        drop_database(db)


# --- workers ---


def _run_deployment(api: str, name: str, parameters: dict) -> str:
    dep = requests.get(f"{api}/deployments/name/{name}", timeout=10).json()
    reply = requests.post(
        f"{api}/deployments/{dep['id']}/create_flow_run", json={"parameters": parameters}, timeout=10
    )
    reply.raise_for_status()
    return reply.json()["id"]


def _wait(api: str, run_ids: list[str], timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [requests.get(f"{api}/flow_runs/{r}", timeout=10).json() for r in run_ids]
        if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs):
            return runs
        time.sleep(0.5)
    raise RuntimeError("flow runs did not finish in time")


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextlib.contextmanager
def cluster(workers: int, sink_port: int, planner: bool = True):
    suffix = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix="declic-cluster-"))
    c = Cluster(
        workdir=workdir,
        prefect_db=f"bench_prefect_{suffix}",
        store_db=f"bench_store_{suffix}",
        workers=workers,
        planner=planner,
        broker="redis",
        schedules=False,
        api_port=free_port(),
        env_extra={
            "DECLIC_SMTP_HOST": "127.0.0.1",
            "DECLIC_SMTP_PORT": str(sink_port),
            "DECLIC_SECRET_KEY": SECRET,
        },
    )
    started = time.perf_counter()
    try:
        c.up()
        emit(
            bench="prefect",
            figure="cluster_up",
            workers=workers,
            broker=c.broker,
            seconds=round(time.perf_counter() - started, 1),
        )
        yield c
    finally:
        c.down()
        from store.db import dispose_engines

        dispose_engines()
        drop_database(c.prefect_db)
        drop_database(c.store_db)


def _steady_rate(arrivals: list[float]) -> float:
    """Messages per second at the SMTP server between the 10th and the 90th percent of a round's deliveries.

    Leaves out each flow run's start (a new process, imports, connections) and the last batches' tail, which
    differ between one run and two runs started a moment apart: what is compared is the delivery rate.
    """
    low, high = len(arrivals) // 10, len(arrivals) * 9 // 10
    return (high - low) / (arrivals[high] - arrivals[low])


def part_workers(n: int, relay_ms: int = 0) -> None:
    """One dispatch run on one worker, then two at once on two workers, twice each; the best rates' ratio.

    `relay_ms` > 0: the SMTP server answers each DATA after that delay, as a relay across a network does
    (it sleeps, using no CPU), so the workers wait on the relay instead of competing for this machine's
    two cores with the SMTP server, PostgreSQL and the Prefect server. The busy cores of each round say
    which case a figure is.
    """
    with SmtpSink(keep=False, latency=relay_ms / 1000) as sink, cluster(2, sink.port) as c, BusySampler() as busy:
        home = Path(tempfile.mkdtemp(prefix="declic-bench-"))
        app = _store_app(c.store_url, sink.port, home)
        clock, ids = seeded(app, n)
        rates = {}
        for runs in (1, 2, 1, 2):
            reset_outbox(app.engine, ids)
            before = sink.received
            t0 = time.perf_counter()
            run_ids = [
                _run_deployment(c.api_url, "dispatch/dispatch", {"now": clock.isoformat()})
                for _ in range(runs)
            ]
            finished = _wait(c.api_url, run_ids)
            wall = time.perf_counter() - t0
            if any(r["state_type"] != "COMPLETED" for r in finished) or sink.received - before != len(ids):
                raise RuntimeError(
                    f"{runs} runs: {[r['state_name'] for r in finished]}, "
                    f"received {sink.received - before} of {len(ids)}"
                )
            start = min(_at(r["start_time"]) for r in finished).timestamp()
            end = max(_at(r["end_time"]) for r in finished).timestamp()
            steady = _steady_rate(sink.arrivals[before:])
            rates.setdefault(runs, []).append(steady)
            emit(
                bench="prefect",
                figure="dispatch_workers",
                workers=runs,
                relay_ms=relay_ms,
                messages=len(ids),
                steady_per_second=round(steady),
                active_seconds=round(end - start, 2),
                active_per_second=round(len(ids) / (end - start)),
                busy_cores=None if (cores := busy.cores(start, end)) is None else round(cores, 2),
                wall_seconds=round(wall, 1),
            )
        ratio = max(rates[2]) / max(rates[1])
        emit(
            bench="prefect",
            figure="two_workers_vs_one",
            relay_ms=relay_ms,
            ratio=round(ratio, 2),
            compared="steady delivery rate at the SMTP server, best of two rounds each",
            target=1.7,
            cpus=os.cpu_count(),
        )
        app.close()


# --- latency ---


def _plan_runs_started_after(api: str, after: str) -> list[dict]:
    return requests.post(
        f"{api}/flow_runs/filter",
        timeout=10,
        json={
            "flow_runs": {
                "start_time": {"after_": after},
                "state": {"type": {"any_": ["RUNNING", "COMPLETED"]}},
            },
            "flows": {"name": {"any_": ["plan"]}},
            "sort": "START_TIME_ASC",
            "limit": 5,
        },
    ).json()


def _milestones(api: str, run: dict, posted: dt.datetime) -> dict[str, float]:
    """Seconds from the POST to the run's creation (the event trigger), its pick-up (PENDING) and start."""
    states = requests.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}, timeout=10).json()
    first = {}
    for state in sorted(states, key=lambda s: s["timestamp"]):
        first.setdefault(state["type"], _at(state["timestamp"]))
    out = {"created": (_at(run["created"]) - posted).total_seconds()}
    for name in ("PENDING", "RUNNING"):
        if name in first:
            out[name.lower()] = (first[name] - posted).total_seconds()
    return out


def measure_latency(web: str, api: str, token: str, events: int) -> list[float]:
    """POST one event at a time; seconds from each POST to the start of the plan run it triggered."""
    from tests.utils.factories import creation_item

    out, steps = [], []
    for i in range(events):
        posted = dt.datetime.now(dt.UTC)
        reply = requests.post(
            f"{web}/api/v1/events",
            json={"events": [creation_item(f"lat-{uuid.uuid4().hex}")]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        reply.raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = _plan_runs_started_after(api, posted.isoformat())
            if runs:
                out.append((_at(runs[0]["start_time"]) - posted).total_seconds())
                steps.append(_milestones(api, runs[0], posted))
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"event {i}: no plan run started within 60 s")
        # Let that run finish (plan runs one at a time) before the next event.
        run_id = runs[0]["id"]
        while requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state_type"] == "RUNNING":
            time.sleep(0.1)
    emit(bench="prefect", figure="event_to_planning_steps", unit="median seconds after the POST",
         **{k: round(statistics.median(s[k] for s in steps if k in s), 2) for k in ("created", "pending", "running")})
    return out


def _emit_latency(mode: str, values: list[float]) -> None:
    emit(
        bench="prefect",
        figure="event_to_planning_start",
        mode=mode,
        events=len(values),
        median_seconds=round(statistics.median(values), 2),
        worst_seconds=round(max(values), 2),
        best_seconds=round(min(values), 2),
        each=[round(v, 2) for v in values],
    )


def part_latency_worker(events: int, planner: bool) -> None:
    import uvicorn

    from orchestrator.app.settings import Settings
    from store.admin import add_partner
    from web.app import create_app

    with SmtpSink(keep=False) as sink, cluster(1, sink.port, planner=planner) as c:
        os.environ["PREFECT_API_URL"] = c.api_url
        port = free_port()
        settings = Settings(home=Path(tempfile.mkdtemp()), database_url=c.store_url, secret_key=SECRET)
        server = uvicorn.Server(
            uvicorn.Config(create_app(bootstrap(settings)), host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        try:
            from store.db import get_engine

            token = add_partner(get_engine(c.store_url), "bge-bench", ["creation"], now=dt.datetime.now(dt.UTC))
            _emit_latency(
                ("worker and warm planner" if planner else "worker only") + " (server on PostgreSQL, Redis broker)",
                measure_latency(f"http://127.0.0.1:{port}", c.api_url, token, events),
            )
        finally:
            server.should_exit = True
            os.environ.pop("PREFECT_API_URL", None)


def part_latency_serve(events: int) -> None:
    from tests.utils.serve import declic_serve

    with declic_serve(Path(tempfile.mkdtemp(prefix="declic-serve-")), SECRET) as served:
        _emit_latency(
            "declic serve (warm plan runner, local Prefect server on SQLite)",
            measure_latency(served.web, served.api, served.token, events),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--relay-ms", type=int, action="append",
                        help="workers part: the SMTP relay's delay per message (default: 0, then 20)")
    parser.add_argument(
        "--part", action="append", choices=("overhead", "workers", "latency", "latency-serve")
    )
    args = parser.parse_args(argv)
    parts = args.part or ["overhead", "workers", "latency", "latency-serve"]
    n = 2_000 if args.quick else 10_000
    events = 5 if args.quick else 20
    if "overhead" in parts:
        part_overhead(n, rounds=1 if args.quick else 2)
    if "workers" in parts:
        for relay_ms in args.relay_ms or [0, 20]:
            part_workers(n, relay_ms)
    if "latency" in parts:
        part_latency_worker(events, planner=True)
        part_latency_worker(events, planner=False)
    if "latency-serve" in parts:
        part_latency_serve(events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
