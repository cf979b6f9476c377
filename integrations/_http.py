"""Shared HTTP plumbing for the channels that POST to a peer (SMS providers, partners' CRMs).

One rule for every HTTP peer: 2xx -> SENT; 408, 425, 429 and 5xx -> TRANSIENT (with the peer's
`Retry-After` when it gives one); any other status -> PERMANENT; timeouts and refused or reset
connections -> TRANSIENT. Each worker thread keeps its own `requests.Session` so keep-alive
connections are reused across a batch and across batches, without sharing a session between threads.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter

from integrations.base import Answer, Handoff, OutgoingMessage, answered
from orchestrator.core.outcomes import Outcome, SendResult

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
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), else None. The one reader of
    the header: the feeds watcher (`triggers.feeds.http`) uses it too."""
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
    # The wall clock unless given: an HTTP-date is the peer's real time, and this only sizes a retry sleep.
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


def _proxy_settings_in_environment() -> bool:
    return any(key.lower().endswith("_proxy") for key in os.environ)


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
            if not _proxy_settings_in_environment():
                # Without proxy variables there is nothing to look up, yet requests scans the whole
                # environment on every request for them (a third of its CPU per SMS in the benchmark).
                session.trust_env = False
                # The one other thing requests takes from the environment: the CA bundle to trust.
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                if bundle:
                    session.verify = bundle
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


class Throttle:
    """Client-side pacing for one peer: a steady rate, and a pause when the peer asks for one.

    `rate` (requests per second, 0 for none) spaces requests evenly across all worker threads, so a
    provider's published limit is respected instead of discovered through 429s. `pause(seconds)` is
    called on a 429/503 with `Retry-After`: until then `paused_for()` tells callers to answer TRANSIENT
    without a request, rather than hammering a peer that asked for quiet. A channel clears the pause at
    the start of each batch (`resume()`): between batches the dispatcher owns time, and it already
    reschedules each held message after the `Retry-After`.
    """

    def __init__(
        self,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0

    def wait_turn(self) -> None:
        """Block until this thread may send its next request."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            self._sleep(slot - now)

    def pause(self, seconds: float) -> None:
        """Hold every request for `seconds` from now (the longest pause asked wins)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def resume(self) -> None:
        """Forget any pause (a new batch starts)."""
        with self._lock:
            self._paused_until = 0.0

    def paused_for(self) -> float:
        """Seconds left in the current pause, 0 when requests may go."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())


# A 429 without `Retry-After` still means "slow down": a short pause beats a burst of refusals.
DEFAULT_THROTTLE_PAUSE = 1.0


def pause_after(throttle: Throttle, status: int, retry_after: float | None) -> None:
    """Pause the channel when the peer asked for it: 429 (always) or 503 with `Retry-After`."""
    if status == 429:
        throttle.pause(retry_after if retry_after is not None else DEFAULT_THROTTLE_PAUSE)
    elif status == 503 and retry_after is not None:
        throttle.pause(retry_after)


def pause_detail(seconds: float) -> str:
    """Plain French for a message held back by a pause the peer asked for."""
    return f"service saturé : pause demandée par le service, encore {seconds:.0f} s (non envoyé)"


def guarded(
    send_one: Callable[[OutgoingMessage, Handoff | None], SendResult],
    message: OutgoingMessage,
    on_handoff: Handoff | None,
) -> SendResult:
    """`send_one(message, on_handoff)`, answering TRANSIENT instead of raising (a failing hand-off, a bug):
    one message must never sink the whole batch's results."""
    try:
        return send_one(message, on_handoff)
    except Exception as exc:
        return SendResult(
            message.message_id, Outcome.TRANSIENT, f"erreur inattendue : {type(exc).__name__}: {exc}"
        )


def send_each(
    workers: WorkerPool,
    throttle: Throttle,
    send_one: Callable[[OutgoingMessage, Handoff | None], SendResult],
    batch: Sequence[OutgoingMessage],
    on_handoff: Handoff | None,
    on_answer: Answer | None,
) -> list[SendResult]:
    """One request per message on the pool's threads, once a pause the peer asked for has ended: one result per
    message, in order, each answered as soon as it is known (SMS and webhooks send the same way)."""
    throttle.resume()
    return workers.map(lambda message: answered(guarded(send_one, message, on_handoff), on_answer), list(batch))
