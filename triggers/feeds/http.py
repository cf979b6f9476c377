"""HTTP for watched feeds: conditional, streamed GETs with timeouts and polite retries, errors in plain words.

Transient failures (a timeout, a dropped connection, a body cut short, 429, 5xx) are retried with
exponential backoff, or after the server's own Retry-After when it gives one. A wait longer than
`max_wait` is not slept through: the fetch fails with `retry_at` so the feed comes back later instead of
holding a worker. Anything else (401, 403, 404...) fails at once: retrying would not change the answer.

What a feed may reach (a feed URL is typed by an operator, and the server at its end chooses where it
redirects): only http(s), only public addresses. The host name is resolved and every address it gives
must be global (no loopback, private, link-local, multicast, reserved, unspecified, shared or IPv4
embedded in IPv6); redirects are followed here, one hop at a time (at most `max_redirects`), each hop
checked the same way, and the address actually connected to is checked again before the body is read
(a name that resolves differently the second time). A feed marked local (`declic feeds add --local`)
skips the address check, never the scheme check. Bodies are capped at `max_bytes` while they stream, and
no error message ever quotes a body.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from integrations._http import parse_retry_after  # the one Retry-After reader, shared with the channels

CHUNK = 1 << 16
USER_AGENT = "Declic/0.1 (outreach engine for very small businesses; feeds watcher)"
DEFAULT_MAX_BYTES = 200 * 1_000_000
REDIRECTS = (301, 302, 303, 307, 308)
# Headers kept when a redirect leaves the host: everything else (a bearer token, an API key) stays home.
_SAFE_ACROSS_HOSTS = {"accept", "if-none-match", "if-modified-since", "user-agent"}
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class FetchError(Exception):
    """A fetch that did not succeed; `str()` is a sentence an operator can act on."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # IPv4 carried inside IPv6 (6to4, Teredo client, NAT64) reaches that IPv4 address.
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a feed may not fetch from `ip` (in French), or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # no public name resolves to one: a way round the IPv4 rules
            return "adresse IPv4 dans IPv6"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = refused_address(inner)
            return f"adresse IPv4 dans IPv6 ({why})" if why else None
    if ip.is_loopback:
        return "adresse de bouclage (cette machine)"
    if ip.is_link_local:
        return "adresse lien-local"
    if ip.is_multicast:
        return "adresse multicast"
    if ip.is_unspecified:
        return "adresse non spécifiée"
    if ip.is_private:
        return "adresse de réseau privé"
    if ip.is_reserved or not ip.is_global:
        return "adresse réservée, non publique"
    return None


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
        allow_local: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        resolve: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.timeout = (connect_timeout, timeout)
        # allow_local: the feed being fetched is marked local (set per feed by the watcher).
        self.allow_local, self.max_bytes, self.max_redirects = allow_local, max_bytes, max_redirects
        self._resolve = resolve
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

    def check_url(self, url: str) -> None:
        """Refuse (permanently) a URL a feed may not fetch: not http(s), or a host that is not public."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            shown = f"{parts.scheme}://" if parts.scheme else "sans schéma"
            raise FetchError(f"adresse refusée: seules les adresses http(s) sont suivies ({shown})", permanent=True)
        host = parts.hostname
        if not host:
            raise FetchError("adresse refusée: aucun nom d'hôte", permanent=True)
        if self.allow_local:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError("adresse refusée: port illisible", permanent=True) from None
        try:
            infos = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"nom d'hôte introuvable: {host}") from None
        for info in infos:
            self._check_ip(host, info[4][0])

    def _check_ip(self, host: str, address: str) -> None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise FetchError(f"adresse refusée: {host} donne une adresse illisible", permanent=True) from None
        why = refused_address(ip)
        if why:
            raise FetchError(
                f"adresse refusée: {host} désigne une {why} ({ip}); un flux du réseau local doit être "
                "déclaré comme tel (declic feeds local NOM)",
                permanent=True,
            )

    def _check_peer(self, url: str, response: requests.Response) -> None:
        # The address actually connected to (the name may resolve differently at connect time). Through a
        # proxy the peer is the proxy: the check above on the name is what holds then.
        if self.allow_local or self.session.proxies or (
            self.session.trust_env and requests.utils.get_environ_proxies(url)
        ):
            return
        sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
        try:
            peer = sock.getpeername()[0] if sock is not None else None
        except OSError:
            peer = None
        if peer:
            self._check_ip(urlsplit(url).hostname or "?", peer)

    def _open(self, url: str, *, params: dict | None, headers: dict[str, str]) -> requests.Response:
        """A streamed response at the end of the redirects, each hop checked; the caller closes it."""
        headers = dict(headers)
        for hop in range(self.max_redirects + 1):
            self.check_url(url)
            response = self.session.get(
                url,
                params=params if hop == 0 else None,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
            try:
                self._check_peer(url, response)
                location = response.headers.get("Location")
                if response.status_code not in REDIRECTS or not location:
                    return response
            except BaseException:
                response.close()
                raise
            response.close()
            target = urljoin(response.url, location)
            if self.session.should_strip_auth(response.url, target):
                headers = {k: v for k, v in headers.items() if k.lower() in _SAFE_ACROSS_HOSTS}
            url = target
        raise FetchError(f"trop de redirections (plus de {self.max_redirects})", permanent=True)

    def _too_big(self) -> FetchError:
        limit = f"{self.max_bytes / 1_000_000:g} Mo"
        return FetchError(
            f"réponse trop volumineuse: plus de {limit} (limite réglée par DECLIC_FEED_MAX_MB)", permanent=True
        )

    def _check_declared_size(self, response: requests.Response) -> None:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and not response.headers.get("Content-Encoding") and int(declared) > self.max_bytes:
            raise self._too_big()

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
                with self._open(url, params=params, headers=headers or {}) as response:
                    if response.status_code in ok_statuses:
                        return handle(response)
                    problem = _status_words(response.status_code)
                    if response.status_code != 429 and response.status_code < 500:
                        raise FetchError(problem, permanent=True)
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            except requests.Timeout:
                problem = f"pas de réponse dans le délai ({self.timeout[1]:.0f} s)"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                cut = isinstance(exc, requests.exceptions.ChunkedEncodingError)
                problem = "téléchargement interrompu en cours de route" if cut else "serveur injoignable"
            except requests.exceptions.ContentDecodingError:
                problem = "réponse compressée illisible"
            except requests.RequestException as exc:
                # An address the client itself refuses (scheme, malformed URL...): retrying changes nothing.
                raise FetchError(f"adresse refusée par le client HTTP ({type(exc).__name__})", permanent=True) from None
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
            self._check_declared_size(response)
            body = bytearray()
            try:
                for chunk in response.iter_content(CHUNK):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise self._too_big()
            except requests.exceptions.ChunkedEncodingError as exc:
                raise _CutBody("réponse incomplète") from exc
            try:
                return response.status_code, json.loads(bytes(body))
            except (ValueError, RecursionError):
                raise _CutBody("réponse incomplète ou qui n'est pas du JSON") from None

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
            self._check_declared_size(response)
            digest, size = hashlib.sha256(), 0
            try:
                with open(part, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self._too_big()
                        out.write(chunk)
                        digest.update(chunk)
            except FetchError:
                part.unlink(missing_ok=True)
                raise
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
