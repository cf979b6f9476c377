"""Partner API throughput against its bare baseline, measured in the same run.

Déclic: `uvicorn web.app:create_app --factory`, one worker, a fresh SQLite store, one partner; every event a valid
creation with business details and contact points (the full path: JSON, per-item checks, scope, business upsert,
idempotent event insert, life-cycle effects, commit, per-item answer). Bare: `uvicorn bench.bare_api:app`, one
worker, a FastAPI app parsing the same JSON with pydantic models of the same shape, no store. The same client
(one keep-alive connection over loopback, bodies encoded beforehand) posts the same batches to each, in
alternating pairs; the ratio is Déclic's rate over the bare rate, per pair (median reported). Each run starts
once both servers are idle (`_settle`: Déclic's store checkpoints in a thread after its commits, which would
otherwise slow the bare run that follows it), and a server's CPU is read once it is idle again.

Then single-event requests (4 clients) against both, and, without --quick, batches of 500 against two Déclic
workers. `python -m bench api [--quick]`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.common import PY, emit, percentile, scratch_env, start_process
from integrations.smtp_sink import free_port
from orchestrator.core.synthetic import Population

SINGLE_CLIENTS = 4


def _server(app: list[str], env: dict[str, str], workers: int = 1):
    port = free_port()
    proc = start_process([PY, "-m", "uvicorn", *app, "--port", str(port), "--workers", str(workers),
                          "--log-level", "warning", "--no-access-log"], env,
                         ready_url=f"http://127.0.0.1:{port}/healthz")
    return proc, f"http://127.0.0.1:{port}/api/v1/events"


class _Client:
    """A keep-alive HTTP/1.1 connection posting pre-encoded JSON bodies (http.client: the client's own cost per
    request stays small beside the server's, on the same two cores)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self.headers = {**headers, "Content-Type": "application/json"}

    def post(self, body: bytes) -> bytes:
        self.conn.request("POST", self.path, body=body, headers=self.headers)
        reply = self.conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{reply.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def _bodies(batches: list[list[dict]]) -> list[bytes]:
    return [json.dumps({"events": batch}).encode() for batch in batches]


def _post_batches(url: str, bodies: list[bytes], headers: dict[str, str]) -> float:
    """Batches per second for `bodies` posted one after the other on one keep-alive connection."""
    client = _Client(url, headers)
    try:
        started = time.perf_counter()
        for body in bodies:
            client.post(body)
        return len(bodies) / (time.perf_counter() - started)
    finally:
        client.close()


def _singles(url: str, bodies: list[bytes], headers: dict[str, str]) -> tuple[float, list[float]]:
    """Requests per second (one event each) from SINGLE_CLIENTS clients at once, and the latencies."""
    latencies: list[float] = []

    def one(chunk):
        client = _Client(url, headers)
        try:
            for body in chunk:
                t = time.perf_counter()
                client.post(body)
                latencies.append(time.perf_counter() - t)
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(SINGLE_CLIENTS) as pool:
        list(pool.map(one, [bodies[i::SINGLE_CLIENTS] for i in range(SINGLE_CLIENTS)]))
    return len(bodies) / (time.perf_counter() - started), latencies


def _cpu(proc) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    with open(f"/proc/{proc.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settle(*procs, quiet: float = 1.0, limit: float = 10.0) -> None:
    """Wait until none of `procs` has used CPU for `quiet` seconds (at most `limit`): Déclic's store copies its
    log back into the database file in a thread half a second after its last commit (`store.db._Checkpoints`), and
    that work must not run while the other server is being measured, nor be left out of Déclic's CPU."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = [_cpu(p) for p in procs]
        time.sleep(quiet)
        if [_cpu(p) for p in procs] == before:
            return


def _fresh(pop: Population, total: int, size: int, tag: str) -> list[list[dict]]:
    batches = pop.creation_events(total, batch_size=size, today=dt.date.today(), bad_every=10**9)
    for i, batch in enumerate(batches):
        for item in batch:
            item["external_id"] = f"{tag}-{i}-{item['external_id']}"
    return batches


def main(quick: bool = False) -> None:
    env = scratch_env()
    from orchestrator.app.bootstrap import bootstrap
    from store.admin import add_partner
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(env["DECLIC_DATABASE_URL"])
    app = bootstrap()
    load_reference(app.engine)
    token = add_partner(app.engine, "bench", ["creation"], now=app.now())
    headers = {"Authorization": f"Bearer {token}"}
    pop = Population("35", seed=1)
    load = os.getloadavg()[0]
    declic, declic_url = _server(["web.app:create_app", "--factory"], env)
    bare, bare_url = _server(["bench.bare_api:app"], env)
    pairs = 2 if quick else 3
    try:
        # Warm both (imports, caches, the first connection).
        _post_batches(declic_url, _bodies(_fresh(pop, 200, 100, "warm")), headers)
        _post_batches(bare_url, _bodies(_fresh(pop, 200, 100, "warm")), headers)
        for size, total in ((100, 2_000 if quick else 10_000), (500, 5_000 if quick else 20_000)):
            rates, bare_rates, ratios = [], [], []
            cpus: dict[int, list[float]] = {declic.pid: [], bare.pid: []}
            for pair in range(pairs):
                bodies = _bodies(_fresh(pop, total, size, f"b{size}-{pair}"))  # new events: no duplicate
                for first in ((bare, bare_url), (declic, declic_url))[::1 if pair % 2 else -1]:
                    _settle(declic, bare)  # each measured alone, whichever went first (they alternate)
                    cpu = _cpu(first[0])
                    rate = _post_batches(first[1], bodies, headers) * size
                    _settle(first[0])
                    cpus[first[0].pid].append((_cpu(first[0]) - cpu) / total)
                    if first[0] is declic:
                        d = rate
                    else:
                        b = rate
                rates.append(d)
                bare_rates.append(b)
                ratios.append(d / b)
            emit(bench="api", figure=f"api_events_per_s_batch_{size}", value=round(statistics.median(rates)),
                 bare=round(statistics.median(bare_rates)), ratio=round(statistics.median(ratios), 3),
                 runs=[round(r) for r in rates], bare_runs=[round(r) for r in bare_rates],
                 ratios=[round(r, 3) for r in ratios], events=total, load_1min=round(load, 2),
                 server_cpu_us_per_event=round(statistics.median(cpus[declic.pid]) * 1e6, 1),
                 bare_server_cpu_us_per_event=round(statistics.median(cpus[bare.pid]) * 1e6, 1))

        singles = _bodies(_fresh(pop, 1_000 if quick else 3_000, 1, "single"))
        _settle(declic, bare)
        cpu = _cpu(declic)
        d_rate, d_lat = _singles(declic_url, singles, headers)
        _settle(declic)
        d_cpu = (_cpu(declic) - cpu) / len(singles)
        cpu = _cpu(bare)
        b_rate, b_lat = _singles(bare_url, singles, headers)
        b_cpu = (_cpu(bare) - cpu) / len(singles)
        emit(bench="api", figure="api_single_requests_per_s", value=round(d_rate), bare=round(b_rate),
             ratio=round(d_rate / b_rate, 3), clients=SINGLE_CLIENTS,
             server_cpu_ms=round(d_cpu * 1000, 2), bare_server_cpu_ms=round(b_cpu * 1000, 2),
             p50_ms=round(percentile(d_lat, 50) * 1000, 1), p99_ms=round(percentile(d_lat, 99) * 1000, 1),
             bare_p50_ms=round(percentile(b_lat, 50) * 1000, 1), load_1min=round(os.getloadavg()[0], 2))
    finally:
        for proc in (declic, bare):
            proc.terminate()
            proc.wait(10)
    if quick:
        return

    # The same batches of 500 against two uvicorn worker processes (one per core), two clients at once:
    # validation runs in parallel; SQLite still takes one writer at a time.
    server, url = _server(["web.app:create_app", "--factory"], env, workers=2)
    try:
        total = 20_000
        batches = _bodies(_fresh(pop, total, 500, "w2"))
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda chunk: _post_batches(url, chunk, headers), [batches[0::2], batches[1::2]]))
        elapsed = time.perf_counter() - started
        emit(bench="api", figure="api_events_per_s_batch_500_two_workers", value=round(total / elapsed),
             events=total, seconds=round(elapsed, 2), server_workers=2, clients=2,
             load_1min=round(os.getloadavg()[0], 2))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
