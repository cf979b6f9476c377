"""Déclic at scale on one or more machines: a Prefect server on PostgreSQL, a process work pool, workers.

    python scripts/scale_out.py up [--workers 2] [--broker redis|memory] [--detach]
    python scripts/scale_out.py down            # stops what a detached `up` started

`up` creates (if missing) two PostgreSQL databases, one for the Prefect server and one for Déclic's store,
starts `prefect server start` on the first (with the Redis messaging broker of prefect-redis when asked),
creates the process work pool, upgrades the store, deploys every deployment of prefect.yaml, and starts the
workers and one warm planner (`declic planner`: plan runs start within a second of a partner batch, where a
worker would start a new process). Without --detach it stays in the foreground until Ctrl-C; either way it
stops every process it started: the planner and each worker first, by its own process group (they run under
setsid), then the server.

Each cluster has its own Redis database: the server's streams and consumer groups (`reactive-triggers`,
`event-persister`...) have fixed names, so two servers sharing one Redis database would take each other's events.
Without --redis-url, `up` claims a free database number (1 to 15) on the local Redis (`DECLIC_REDIS_URL`, by
default redis://127.0.0.1:6379) with a claim key, and empties and frees it when it stops; a claim whose owner
process is gone on this machine is taken over.

The same `Cluster` is used by tests/e2e/test_scale_out.py and bench/bench_prefect.py; a `Cluster` made without
database names gets fresh ones (its own Prefect database and store).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from orchestrator.prefect.serve import alerts_line

ROOT = Path(__file__).resolve().parent.parent
POOL = "declic-process"
PG_ADMIN = os.environ.get("DECLIC_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STATE_FILE = "scale_out.json"
REDIS_BASE = os.environ.get("DECLIC_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_CLAIM_KEY = "declic:scale-out:claim"


def _bin(name: str) -> str:
    # The console scripts of the interpreter that runs us (the project's venv), not whatever is on PATH.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _redis_db_url(base: str, number: int) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{number}"))


def _claim_value(pid: int) -> str:
    return json.dumps({"host": socket.gethostname(), "pid": pid, "id": uuid.uuid4().hex})


def _stale(value: bytes | None) -> bool:
    # A claim is stale when it was made on this machine by a process that no longer runs.
    try:
        owner = json.loads(value or b"{}")
    except ValueError:
        return False
    return owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int) \
        and not _alive(owner["pid"])


def claim_redis_database(base: str = REDIS_BASE, pid: int | None = None) -> tuple[str, str]:
    """Claim a Redis database number no other cluster uses; returns its URL and the claim (to release it).

    A database is free when it is empty (the claim key is set with NX, so two clusters starting at once never
    get the same one) or when its claim is stale (its owner process is gone on this machine: the database is
    emptied before it is reused). Database 0 is left to whatever else uses this Redis.
    """
    import redis

    with redis.Redis.from_url(_redis_db_url(base, 0)) as admin:
        try:
            count = int(admin.config_get("databases").get("databases", 16))
        except redis.ResponseError:  # CONFIG disabled (managed Redis): the default count
            count = 16
    claim = _claim_value(pid or os.getpid())
    for number in range(1, count):
        url = _redis_db_url(base, number)
        with redis.Redis.from_url(url) as client:
            if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, claim, nx=True):
                return url, claim
            with client.pipeline() as pipe:
                try:
                    pipe.watch(REDIS_CLAIM_KEY)
                    if not _stale(pipe.get(REDIS_CLAIM_KEY)):
                        continue
                    pipe.multi()
                    pipe.flushdb()
                    pipe.set(REDIS_CLAIM_KEY, claim)
                    pipe.execute()
                    return url, claim
                except redis.WatchError:  # another cluster took it over first
                    continue
    raise RuntimeError(f"aucune base Redis libre sur {base} (les bases 1 à {count - 1} sont prises)")


def _swap_redis_claim(url: str, claim: str, new: str | None) -> bool:
    """Replace our claim by `new` (None: empty the database, which frees it); False if it is no longer ours."""
    import redis

    with redis.Redis.from_url(url) as client, client.pipeline() as pipe:
        try:
            pipe.watch(REDIS_CLAIM_KEY)
            if (pipe.get(REDIS_CLAIM_KEY) or b"").decode() != claim:
                return False
            pipe.multi()
            if new is None:
                pipe.flushdb()
            else:
                pipe.set(REDIS_CLAIM_KEY, new)
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def release_redis_database(url: str, claim: str) -> bool:
    """Empty and free a database claimed by `claim_redis_database` (if the claim is still ours)."""
    return _swap_redis_claim(url, claim, None)


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(name: str, admin_url: str = PG_ADMIN) -> None:
    """Create the PostgreSQL database `name` if it does not exist."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str, admin_url: str = PG_ADMIN) -> None:
    """Drop the PostgreSQL database `name` (closing its leftover connections)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_url(name: str, driver: str, admin_url: str = PG_ADMIN) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(drivername=f"postgresql+{driver}", database=name).render_as_string(
        hide_password=False)


@dataclass
class Cluster:
    """One Prefect server, its process work pool and N workers, with the store on PostgreSQL."""

    workdir: Path
    prefect_db: str | None = None  # None: a fresh database for this cluster (declic_prefect_<random>)
    store_db: str | None = None  # None: a fresh store (declic_store_<random>)
    workers: int = 2
    broker: str = "redis"  # "redis" (prefect-redis streams) or "memory" (the server's in-process broker)
    redis_url: str | None = None  # None: claim a free database of the local Redis at `up`, free it at `down`
    api_port: int = 4200
    worker_limit: int = 1  # flow runs at once per worker: two dispatch runs land on two workers
    schedules: bool = True  # False: no scheduled runs (tests and benchmarks start their own)
    env_extra: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen | None = None
    children: list[subprocess.Popen] = field(default_factory=list)  # the workers, then the planner
    planner: bool = True  # a warm `declic planner` beside the workers
    quiet: bool = True
    redis_claim: str | None = None  # set when `up` claimed the Redis database itself

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.prefect_db = self.prefect_db or f"declic_prefect_{suffix}"
        self.store_db = self.store_db or f"declic_store_{suffix}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api"

    @property
    def store_url(self) -> str:
        return _database_url(self.store_db, "psycopg")

    def env(self) -> dict[str, str]:
        """The environment of every process: Prefect client and server settings, Déclic's store."""
        env = dict(os.environ)
        env.update({
            "PREFECT_HOME": str(self.workdir / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": _database_url(self.prefect_db, "asyncpg"),
            "PREFECT_SERVER_UI_ENABLED": "false",
            # Workers poll every second (default 10-16 s), so a run starts within about 2 s.
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_LOGGING_LEVEL": env_level(),
            "DECLIC_DATABASE_URL": self.store_url,
            "DECLIC_HOME": str(self.workdir / "declic-home"),
            # prefect.yaml runs the flows from "{{ $PWD }}": the project folder, wherever we start.
            "PWD": str(ROOT),
        })
        if not self.schedules:
            env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
        if self.broker == "redis":
            env.update({
                "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
                "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
                "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
                "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
                "PREFECT_REDIS_MESSAGING_URL": self.redis_url,
            })
        env.update(self.env_extra)
        return env

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        # setsid: each long-running child leads its own process group, so it (and the flow-run processes it
        # starts) can be stopped by its own id, and it receives signals even though we are not a terminal.
        out = open(self.workdir / log, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        return subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(args, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def up(self) -> Cluster:
        """Start everything; returns self (stop with `down`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.broker == "redis":
            import importlib.util

            if importlib.util.find_spec("prefect_redis") is None:
                raise RuntimeError("the Redis broker needs prefect-redis (pip install "
                                   "'prefect-redis>=0.3,<0.4'), or --broker memory with one Prefect server")
        if self.broker == "redis" and self.redis_url is None:
            self.redis_url, self.redis_claim = claim_redis_database()
        try:
            ensure_database(self.prefect_db)
            ensure_database(self.store_db)
        except BaseException:
            self._release_redis()
            raise
        started = time.perf_counter()
        try:
            self.server = self._spawn([_bin("prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", str(self.api_port)], "server.log")
            if self.redis_claim:  # the server is the one Redis user: the claim lives as long as it does
                claim = _claim_value(self.server.pid)
                if _swap_redis_claim(self.redis_url, self.redis_claim, claim):
                    self.redis_claim = claim
            self._wait_healthy()
            self.say(f"Prefect server on {self.api_url} ({self.broker} broker"
                     + (f" on {self.redis_url}" if self.broker == "redis" else "") + "), "
                     f"healthy in {time.perf_counter() - started:.1f} s")
            self._run([_bin("prefect"), "--no-prompt", "work-pool", "create", POOL, "--type", "process",
                       "--overwrite"])
            self._run([_bin("declic"), "init"])
            self._run([_bin("prefect"), "--no-prompt", "deploy", "--all"])
            self.say(f"store on {self.store_db}, work pool {POOL}, deployments from prefect.yaml")
            # The operators' alerts: automations of the notify-operators deployment, made by `prefect deploy`.
            self.say(alerts_line(len(self.automations()), self.env().get("DECLIC_OPERATOR_EMAILS")))
            for number in range(1, self.workers + 1):
                self.children.append(self._spawn(
                    [_bin("prefect"), "worker", "start", "--pool", POOL, "--name", f"declic-worker-{number}",
                     "--limit", str(self.worker_limit), "--type", "process", "--install-policy", "never"],
                    f"worker-{number}.log"))
            if self.planner:
                self.children.append(self._spawn([_bin("declic"), "planner"], "planner.log"))
            self._wait_workers()
            self.say(f"{self.workers} workers polling {POOL}" + (", a warm planner" if self.planner else ""))
        except BaseException:
            self.down()
            raise
        return self

    def automations(self) -> list[str]:
        """The names of the server's automations (those of prefect.yaml, created with the deployments)."""
        reply = requests.post(f"{self.api_url}/automations/filter", json={}, timeout=10)
        reply.raise_for_status()
        return sorted(automation["name"] for automation in reply.json())

    def _wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server and self.server.poll() is not None:
                raise RuntimeError(f"the Prefect server exited; see {self.workdir / 'server.log'}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api_url}/health", timeout=2).ok:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the Prefect server was not healthy after {timeout} s")

    def _wait_workers(self, timeout: float = 180) -> None:
        # A worker is ready once it has sent its first heartbeat to the pool.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.children:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker or the planner exited; see {self.workdir}/*.log")
            reply = requests.post(f"{self.api_url}/work_pools/{POOL}/workers/filter", json={}, timeout=5)
            # (the planner is not a pool worker: it is ready once its process runs; a plan run it misses
            # while starting is taken by a worker)
            if reply.ok and len([w for w in reply.json() if w.get("status") == "ONLINE"]) >= self.workers:
                return
            time.sleep(0.5)
        raise RuntimeError(f"workers not online after {timeout} s")

    def down(self) -> None:
        """Stop the workers and the planner (each by its own process group), then the server."""
        for proc in self.children:
            _stop(proc.pid, proc)
        self.children.clear()
        if self.server is not None:
            _stop(self.server.pid, self.server)
            self.server = None
        self._release_redis()

    def _release_redis(self) -> None:
        if self.redis_claim and self.redis_url:
            release_redis_database(self.redis_url, self.redis_claim)
            self.redis_claim = None

    def state(self) -> dict:
        """What `down` needs to stop a detached cluster."""
        return {"server": self.server.pid if self.server else None,
                "workers": [p.pid for p in self.children], "api_url": self.api_url,
                "store_url": self.store_url, "redis_url": self.redis_url, "redis_claim": self.redis_claim}


def env_level() -> str:
    return os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")


def _stop(pid: int, proc: subprocess.Popen | None = None, timeout: float = 20) -> None:
    # SIGTERM to the process group the child leads (setsid), then SIGKILL if it does not leave in time.
    # A worker turns SIGTERM into a graceful stop; its flow-run children share its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _alive(pid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(5)
    if proc is not None and proc.poll() is None:
        proc.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a Prefect server, the work pool, the deployments and the workers")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--broker", choices=("redis", "memory"), default="redis")
    up.add_argument("--redis-url", default=os.environ.get("PREFECT_REDIS_MESSAGING_URL"),
                    help="the Redis database of this cluster (default: claim a free one on the local Redis)")
    up.add_argument("--port", type=int, default=4200)
    up.add_argument("--prefect-db", default="declic_prefect")
    up.add_argument("--store-db", default="declic")
    up.add_argument("--workdir", type=Path, default=ROOT / "var" / "scale-out")
    up.add_argument("--detach", action="store_true", help="leave it running; stop it with `down`")
    down = sub.add_parser("down", help="stop what a detached `up` started")
    down.add_argument("--workdir", type=Path, default=ROOT / "var" / "scale-out")
    args = parser.parse_args(argv)

    if args.command == "down":
        state = json.loads((args.workdir / STATE_FILE).read_text())
        for pid in state["workers"]:
            _stop(pid)
        if state["server"]:
            _stop(state["server"])
        if state.get("redis_claim"):
            release_redis_database(state["redis_url"], state["redis_claim"])
        (args.workdir / STATE_FILE).unlink()
        print("stopped")
        return 0

    cluster = Cluster(workdir=args.workdir, prefect_db=args.prefect_db, store_db=args.store_db,
                      workers=args.workers, broker=args.broker, redis_url=args.redis_url, api_port=args.port,
                      worker_limit=4, quiet=False).up()
    print(f"export PREFECT_API_URL={cluster.api_url}")
    print(f"export DECLIC_DATABASE_URL={cluster.store_url}")
    if args.detach:
        (args.workdir / STATE_FILE).write_text(json.dumps(cluster.state()))
        print(f"running; stop with: python scripts/scale_out.py down --workdir {args.workdir}")
        return 0
    try:
        print("running; Ctrl-C stops the workers, then the server")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
