"""Helpers shared by benchmarks: a scratch store, a server in its own process, JSON output."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def emit(**figures) -> None:
    """Print one figure as a JSON line (collected by `python -m bench`)."""
    print(json.dumps(figures, ensure_ascii=False), flush=True)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) of values."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def scratch_env(url: str | None = None) -> dict[str, str]:
    """DECLIC_* variables for a throw-away store (SQLite in a temp dir unless `url`)."""
    home = Path(tempfile.mkdtemp(prefix="declic-bench-"))
    env = {"DECLIC_HOME": str(home), "DECLIC_SECRET_KEY": "bench-secret-0123456789abcdef",
           "PREFECT_HOME": str(home / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["DECLIC_DATABASE_URL"] = url or f"sqlite:///{home / 'declic.db'}"
    os.environ.update(env)
    return env


def start_process(args: list[str], env: dict[str, str], ready_url: str | None = None) -> subprocess.Popen:
    """Start a helper process (server, sink) and wait until it answers."""
    proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    if ready_url:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(ready_url, timeout=0.5)
                return proc
            except requests.RequestException:
                time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"{args} did not start: {proc.stderr.read()[-2000:]}")
    return proc


def machine_busy() -> tuple[float, float]:
    """(CPU seconds spent busy by the whole machine, wall seconds), from /proc/stat: others' load during a run."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, time.monotonic()


class BusySampler:
    """Samples the machine's busy CPU seconds in a thread, to tell how many cores were busy in a time window."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        self.every, self.samples = every, []  # (time.time(), busy CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), machine_busy()[0]))
            self._stop.wait(self.every)

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def cores(self, start: float, end: float) -> float | None:
        """Busy cores on average between two `time.time()` instants (the samples inside); None if too short."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        (t0, b0), (t1, b1) = inside[0], inside[-1]
        return (b1 - b0) / (t1 - t0)


def median(values):
    return statistics.median(values)


PY = sys.executable
