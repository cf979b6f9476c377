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


def median(values):
    return statistics.median(values)


PY = sys.executable
