"""Partner API throughput: events accepted per second in batches of 100 and 500, and single-event requests
per second with p50/p99 latency. The server runs in its own process (uvicorn, one worker) on SQLite."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import PY, emit, percentile, scratch_env, start_process
from integrations.smtp_sink import free_port
from orchestrator.synthetic import Population


def main(quick: bool = False) -> None:
    env = scratch_env()
    from orchestrator.bootstrap import bootstrap
    from store.admin import add_partner
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(env["DECLIC_DATABASE_URL"])
    app = bootstrap()
    load_reference(app.engine)
    token = add_partner(app.engine, "bench", ["creation"])
    port = free_port()
    server = start_process([PY, "-m", "uvicorn", "web.app:create_app", "--factory", "--port", str(port),
                            "--log-level", "warning"], env,
                           ready_url=f"http://127.0.0.1:{port}/healthz")
    base = f"http://127.0.0.1:{port}/api/v1/events"
    headers = {"Authorization": f"Bearer {token}"}
    pop = Population("35", seed=1)
    try:
        for size, total in ((100, 5_000 if quick else 20_000), (500, 5_000 if quick else 50_000)):
            batches = pop.creation_events(total, batch_size=size, bad_every=10**9)
            for i, batch in enumerate(batches):
                for item in batch:
                    item["external_id"] = f"b{size}-{i}-{item['external_id']}"
            with requests.Session() as http:
                started = time.perf_counter()
                for batch in batches:
                    http.post(base, json={"events": batch}, headers=headers, timeout=60).raise_for_status()
                elapsed = time.perf_counter() - started
            emit(figure=f"api_events_per_s_batch_{size}", value=round(total / elapsed), events=total,
                 seconds=round(elapsed, 2))

        singles = [b[0] for b in pop.creation_events(1_000 if quick else 3_000, batch_size=1, bad_every=10**9)]
        for item in singles:
            item["external_id"] = "single-" + item["external_id"]
        latencies: list[float] = []

        def one(chunk):
            with requests.Session() as http:
                for item in chunk:
                    t = time.perf_counter()
                    http.post(base, json={"events": [item]}, headers=headers, timeout=60).raise_for_status()
                    latencies.append(time.perf_counter() - t)

        threads = 4
        chunks = [singles[i::threads] for i in range(threads)]
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, chunks))
        elapsed = time.perf_counter() - started
        emit(figure="api_single_requests_per_s", value=round(len(singles) / elapsed), clients=threads,
             p50_ms=round(percentile(latencies, 50) * 1000, 1), p99_ms=round(percentile(latencies, 99) * 1000, 1))
    finally:
        server.terminate()
        server.wait(10)

    # The same batches of 500 against two uvicorn worker processes (one per core), two clients at once:
    # validation runs in parallel; SQLite still takes one writer at a time.
    port = free_port()
    server = start_process([PY, "-m", "uvicorn", "web.app:create_app", "--factory", "--port", str(port),
                            "--workers", "2", "--log-level", "warning"], env,
                           ready_url=f"http://127.0.0.1:{port}/healthz")
    base = f"http://127.0.0.1:{port}/api/v1/events"
    try:
        total = 5_000 if quick else 50_000
        batches = pop.creation_events(total, batch_size=500, bad_every=10**9)
        for i, batch in enumerate(batches):
            for item in batch:
                item["external_id"] = f"w2-{i}-{item['external_id']}"

        def post_all(chunk):
            with requests.Session() as http:
                for batch in chunk:
                    http.post(base, json={"events": batch}, headers=headers, timeout=60).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(post_all, [batches[0::2], batches[1::2]]))
        elapsed = time.perf_counter() - started
        emit(figure="api_events_per_s_batch_500_two_workers", value=round(total / elapsed), events=total,
             seconds=round(elapsed, 2), server_workers=2, clients=2)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
