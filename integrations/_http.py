"""Shared HTTP plumbing for the channels that POST to a peer (SMS providers, partners' CRMs).

One rule for every HTTP peer: 2xx -> SENT; 408, 425, 429 and 5xx -> TRANSIENT (with the peer's
`Retry-After` when it gives one); any other status -> PERMANENT; timeouts and refused or reset
connections -> TRANSIENT. Each worker thread keeps its own `requests.Session` so keep-alive
connections are reused across a batch and across batches, without sharing a session between threads.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter

from integrations.base import Outcome

# Statuses worth retrying: the peer is busy, throttling us, or broken for now.
TRANSIENT_STATUSES = frozenset({408, 425, 429})

T = TypeVar("T")
R = TypeVar("R")


def classify_status(status: int) -> Outcome:
    """The outcome an HTTP status code means for one message."""
    if 200 <= status < 300:
        return Outcome.SENT
    if status in TRANSIENT_STATUSES or status >= 500:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def status_detail(response: requests.Response, extra: str = "") -> str:
    """A short, plain description of a peer's answer: "429 Too Many Requests (quota)"."""
    text = f"{response.status_code} {response.reason or ''}".strip()
    return f"{text} ({extra})" if extra else text


def transport_detail(exc: requests.RequestException) -> str:
    """A plain French description of a failure before any HTTP answer."""
    if isinstance(exc, requests.Timeout):
        return "délai dépassé : le service n'a pas répondu à temps"
    if isinstance(exc, requests.ConnectionError):
        return "connexion impossible au service (refusée ou interrompue)"
    return f"erreur de transport : {type(exc).__name__}"


class SessionPool:
    """One `requests.Session` per worker thread, with default headers, all closed together."""

    def __init__(self, headers: Mapping[str, str] | None = None, pool_size: int = 4) -> None:
        self._headers = dict(headers or {})
        self._pool_size = pool_size
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        """The calling thread's session, created on first use."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        """Close every session opened by any thread."""
        with self._lock:
            sessions, self._all = self._all, []
        for session in sessions:
            session.close()
        self._local = threading.local()


class WorkerPool:
    """A small, long-lived thread pool that maps a function over a batch, keeping the order."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[fn(x) for x in items]`, run on the pool when it is worth it."""
        # A single worker or a single item gains nothing from a thread hop.
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="declic-http")
        return list(self._executor.map(fn, items))

    def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
