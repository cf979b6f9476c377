"""`declic serve` as a child process on a fresh embedded home (SQLite, local Prefect server)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from integrations.smtp_sink import free_port


@dataclass
class Served:
    home: Path
    web: str  # base URL of the web app
    api: str  # the local Prefect server's API URL
    token: str  # a partner's bearer token (partner "bge-serve", creations)
    proc: subprocess.Popen


DECLIC = str(Path(sys.executable).parent / "declic")  # the project's console script in this venv


def _declic(*args: str, env: dict) -> str:
    return subprocess.run([DECLIC, *args], env=env, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def declic_serve(home: Path, secret: str, *, timeout: float = 180) -> Iterator[Served]:
    """`declic init`, a partner, then `declic serve` until its deployments are registered; SIGTERM at exit."""
    web_port, prefect_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DECLIC_"))}
    env.update({"DECLIC_HOME": str(home), "DECLIC_SECRET_KEY": secret, "PREFECT_LOGGING_LEVEL": "WARNING"})
    _declic("init", env=env)
    token = _declic("partners", "add", "bge-serve", env=env).strip().splitlines()[-1]
    log = open(home / "serve.log", "wb")  # noqa: SIM115 (the child's lifetime)
    proc = subprocess.Popen([DECLIC, "serve", "--port", str(web_port), "--prefect-port", str(prefect_port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(home, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{prefect_port}/api", token, proc)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(served):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"declic serve did not start; see {home / 'serve.log'}:\n"
                                   + (home / "serve.log").read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(120)  # a plan run in progress may take a minute to end, the local server 20 s more
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def _ready(served: Served) -> bool:
    # The web app answers and every deployment of prefect.yaml is registered (the warm one comes first).
    from orchestrator.prefect.serve import read_deployments

    with contextlib.suppress(requests.RequestException, ValueError):
        if not requests.get(f"{served.web}/healthz", timeout=1).ok:
            return False
        deployments = requests.post(f"{served.api}/deployments/filter", json={}, timeout=2).json()
        return len(deployments) >= len(read_deployments())
    return False
