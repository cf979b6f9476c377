"""HTTP for watched feeds: conditional, streamed GETs with timeouts and polite retries, errors in plain words.

Transient failures (a timeout, a dropped connection, a body cut short, 429, 5xx) are retried with
exponential backoff, or after the server's own Retry-After when it gives one. A wait longer than
`max_wait` is not slept through: the fetch fails with `retry_at` so the feed comes back later instead of
holding a worker. Anything else (401, 403, 404...) fails at once: retrying would not change the answer.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

CHUNK = 1 << 16
USER_AGENT = "Declic/0.1 (outreach engine for very small businesses; feeds watcher)"


class FetchError(Exception):
    """A fetch that did not succeed; `str()` is a sentence an operator can act on."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class Downloaded:
    """A complete body on disk (or None when the server said 304), its hash and its validators."""

    path: Path | None
    sha256: str | None
    size: int
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.path is None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when unreadable."""
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
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _status_words(code: int) -> str:
    return {
        400: "requête refusée (400)",
        401: "accès refusé (401): jeton absent ou invalide",
        403: "accès interdit (403): vérifier le jeton ou les droits",
        404: "adresse introuvable (404)",
        410: "ressource supprimée (410)",
        429: "trop de requêtes (429): le serveur demande de ralentir",
        500: "erreur interne du serveur (500)",
        502: "passerelle en erreur (502)",
        503: "service indisponible (503)",
        504: "délai dépassé côté serveur (504)",
    }.get(code, f"réponse HTTP {code}")


class FeedHttp:
    """One session for a run of the watcher; every request goes through `_send` (retries, rate, timeouts)."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 2.0,
        max_wait: float = 120.0,
        min_interval: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.timeout = (connect_timeout, timeout)
        self.attempts, self.backoff, self.max_wait = attempts, backoff, max_wait
        self.min_interval = min_interval  # seconds between two requests (an API's rate limit)
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._last_request = 0.0
        self.requests_made = 0

    def close(self) -> None:
        self.session.close()

    def _pace(self) -> None:
        wait = self._last_request + self.min_interval - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last_request = time.monotonic()

    def _send(
        self,
        url: str,
        handle: Callable[[requests.Response], Any],
        *,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200,),
    ) -> Any:
        """GET with retries; `handle` reads a successful response (it may raise FetchError for a cut body)."""
        problem = "aucune tentative"
        for attempt in range(1, self.attempts + 1):
            retry_after = None
            self._pace()
            self.requests_made += 1
            try:
                with self.session.get(
                    url, params=params, headers=headers or {}, timeout=self.timeout, stream=True
                ) as response:
                    if response.status_code in ok_statuses:
                        return handle(response)
                    problem = _status_words(response.status_code)
                    if response.status_code != 429 and response.status_code < 500:
                        raise FetchError(problem, permanent=True)
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            except requests.Timeout:
                problem = f"pas de réponse dans le délai ({self.timeout[1]:.0f} s)"
            except requests.ConnectionError as exc:
                cut = isinstance(exc, requests.exceptions.ChunkedEncodingError)
                problem = "téléchargement interrompu en cours de route" if cut else "serveur injoignable"
            except _CutBody as exc:
                problem = str(exc)
            if attempt == self.attempts:
                break
            wait = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
            if wait > self.max_wait:
                raise FetchError(f"{problem}; nouvel essai dans {wait:.0f} s", retry_after=wait)
            self.sleep(wait)
        raise FetchError(
            f"{problem} ({self.attempts} essai{'s' if self.attempts > 1 else ''})", retry_after=retry_after
        )

    def get_json(
        self,
        url: str,
        *,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200,),
    ) -> tuple[int, Any]:
        """(status, decoded JSON) of a GET; a body that is not JSON counts as cut short (retried)."""

        def read(response: requests.Response) -> tuple[int, Any]:
            try:
                return response.status_code, response.json()
            except (ValueError, requests.exceptions.ChunkedEncodingError) as exc:
                raise _CutBody("réponse incomplète ou qui n'est pas du JSON") from exc

        return self._send(url, read, params=params, headers=headers, ok_statuses=ok_statuses)

    def download(
        self,
        url: str,
        dest: Path,
        *,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Downloaded:
        """Stream the body to `dest` (written whole or not at all); 304 when the validators still hold."""
        headers = dict(headers or {})
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def save(response: requests.Response) -> Downloaded:
            if response.status_code == 304:
                return Downloaded(None, None, 0, etag, last_modified)
            digest, size = hashlib.sha256(), 0
            try:
                with open(part, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            except requests.exceptions.ChunkedEncodingError as exc:
                part.unlink(missing_ok=True)
                raise _CutBody(
                    f"téléchargement interrompu après {size:,} octets".replace(",", "\u202f")
                ) from exc
            expected = response.headers.get("Content-Length")
            if expected and not response.headers.get("Content-Encoding") and int(expected) != size:
                part.unlink(missing_ok=True)
                raise _CutBody(f"téléchargement incomplet: {size} octets reçus sur {expected} annoncés")
            os.replace(part, dest)
            return Downloaded(
                dest,
                digest.hexdigest(),
                size,
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
            )

        return self._send(url, save, headers=headers, ok_statuses=(200, 304))


class _CutBody(Exception):
    """A body that ended before it was complete (transient: retried)."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
