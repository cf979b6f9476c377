"""The feeds watcher: fetch each due feed, ingest what changed with the file ingesters, keep its state.

Order of operations, so nothing is lost or doubled:
1. fetch the whole body to disk (conditional GET, streamed; a body cut short is retried, then given up);
2. if the server said 304, or the body hashes as the last ingested one, record "unchanged" and stop;
3. ingest it with the same functions as `declic ingest ...` (they commit, idempotently);
4. only then move the feed's ETag, Last-Modified, hash and API cursor on.
A crash between 3 and 4 ingests the same body again next run: the event store dedups it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from orchestrator.app import ingest
from orchestrator.app.bootstrap import App
from orchestrator.app.intake import PartnerScope, store_with_effects
from segments.territory import commune
from segments.territory import departements as all_departements
from store.feeds import FeedRow, claim_feed, due_feeds, record_failure, record_success
from store.partners import partner_named
from store.planning import active_campaigns
from triggers.bodacc import BodaccFormatError
from triggers.feeds.bodacc_api import pull_bodacc
from triggers.feeds.http import FeedHttp, FetchError, file_sha256
from triggers.feeds.sirene_api import pull_sirene
from triggers.model import Reject
from triggers.partner_api import validate_item
from triggers.partner_csv import PartnerFileError
from triggers.payload_schema import DROPPED_FIELDS, Dropped
from triggers.report import IngestReport
from triggers.sirene import SireneFormatError

logger = logging.getLogger("declic.feeds")


class IngestFailed(Exception):
    """A complete body the ingester refused as a whole (wrong format, unknown partner)."""


def feed_http(app: App, *, min_interval: float = 0.0, sleep=None) -> FeedHttp:
    """An HTTP client configured from the settings."""
    s = app.settings
    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    return FeedHttp(
        timeout=s.feed_timeout_seconds,
        attempts=s.feed_attempts,
        backoff=s.feed_backoff_seconds,
        max_wait=s.feed_max_wait_seconds,
        max_bytes=s.feed_max_mb * 1_000_000,
        min_interval=min_interval,
        **kwargs,
    )


def _auth_headers(feed: FeedRow) -> dict[str, str]:
    # The token is read from the environment at fetch time; only the variable's name is stored.
    if not feed.token_env:
        return {}
    token = os.environ.get(feed.token_env)
    if not token:
        raise FetchError(f"la variable {feed.token_env} (jeton du flux) n'est pas définie", permanent=True)
    return {"Authorization": f"Bearer {token}"}


def _workdir(app: App, feed: FeedRow) -> Path:
    path = app.settings.home / "feeds" / feed.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _suffix(url: str, default: str) -> str:
    # The readers recognise .gz and .zip by name: keep the URL's own suffixes.
    name = Path(urlparse(url).path).name
    suffixes = "".join(Path(name).suffixes[-2:])
    return suffixes if suffixes else default


def _events(report) -> int:
    return (
        report.stored
        if report.stored and not report.events
        else sum(v for k, v in report.events.items() if not k.startswith("pending"))
    )


def _words(report, events: int) -> str:
    text = (
        f"{events} événement{'s' if events != 1 else ''} ({report.read} lus, {report.rejected_total} refusés"
    )
    if report.skipped:
        text += f", {sum(report.skipped.values())} écartés"
    return text + ")"


def ingest_body(app: App, feed: FeedRow, path: Path, today: dt.date, now: dt.datetime):
    """Hand a complete body to the ingester of its format; returns the IngestReport."""
    try:
        if feed.format == "partner-csv":
            return ingest.import_partner_file(app.engine, path, partner=feed.partner, today=today, now=now,
                                              secret=app.settings.resolved_secret)
        if feed.format == "partner-json":
            return ingest_partner_json(app, feed, path, today, now)
        if feed.format in ("sirene", "sirene-api"):
            return ingest.ingest_sirene(app.engine, path, today=today, now=now)
        if feed.format in ("bodacc", "bodacc-api"):
            return ingest.ingest_bodacc(app.engine, path, today=today, now=now)
    except (BodaccFormatError, SireneFormatError, PartnerFileError, LookupError, ValueError) as exc:
        raise IngestFailed(f"contenu refusé: {exc}") from exc
    raise IngestFailed(f"format inconnu: {feed.format}")


def ingest_partner_json(app: App, feed: FeedRow, path: Path, today: dt.date, now: dt.datetime):
    """A partner's JSON feed: the body of the partner API (`{"events": [...]}`) or a bare array of items,
    through the one partner intake: each item validated by the API's own schema, the partner's scope (types
    and territory, `PartnerScope`) and its effects (`store_with_effects`), as the API and partner files."""
    partner = partner_named(app.engine, feed.partner or "")
    if partner is None:
        raise LookupError(f"partenaire inconnu: {feed.partner}")
    try:
        body = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"pas du JSON lisible ({exc})") from exc
    items = body.get("events") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError('un tableau d\'événements ou un objet {"events": [...]} est attendu')
    scope = PartnerScope(tuple(partner.allowed_types or ()), tuple(partner.territory or ()))
    report = IngestReport(read=len(items))
    dropped = Dropped()  # undeclared payload fields, dropped at intake (triggers.payload_schema)
    for start in range(0, len(items), 500):
        checked = []
        for number, raw in enumerate(items[start : start + 500], start=start + 1):
            out = validate_item(raw, f"partner:{partner.id}", partner.name, number, dropped=dropped, today=today)
            if isinstance(out, Reject):
                report.reject(out)
            else:
                checked.append((number, out))
        # Checked after the previous part is stored, so this part's scope sees the businesses it created.
        valid = []
        for (number, event), refused in zip(checked, scope.rejects(app.engine, [e for _, e in checked]),
                                            strict=True):
            if refused is not None:
                report.reject(Reject(number, refused.field, refused.reason))
            else:
                valid.append(event)
        report.accepted += len(valid)
        stored_all = (store_with_effects(app.engine, valid, partner_id=partner.id, today=today, now=now,
                                         secret=app.settings.resolved_secret) if valid else [])
        for stored, event in zip(stored_all, valid, strict=True):
            if stored.withheld:
                report.events["stored without contacts (erased person)"] += 1
            if stored.status == "duplicate":
                report.skipped["already stored"] += 1
            else:
                report.events[event.type] += 1
                report.stored += 1
                if stored.status == "pending":
                    report.events["pending (business not known yet)"] += 1
    if dropped.fields:
        report.events[DROPPED_FIELDS] += dropped.fields
    report.check()
    return report


def _file_feed(app: App, feed: FeedRow, http: FeedHttp, now: dt.datetime) -> dict[str, Any]:
    dest = _workdir(app, feed) / f"body{_suffix(feed.url, '.csv' if 'csv' in feed.format else '.json')}"
    got = http.download(
        feed.url, dest, headers=_auth_headers(feed), etag=feed.etag, last_modified=feed.last_modified
    )
    if got.not_modified:
        record_success(app.engine, feed, now=now, outcome="inchangé (304 Not Modified)")
        return {"state": "inchangé (304)", "events": 0}
    try:
        if got.sha256 == feed.content_hash:
            record_success(
                app.engine,
                feed,
                now=now,
                outcome="inchangé (même contenu)",
                etag=got.etag,
                last_modified=got.last_modified,
            )
            return {"state": "inchangé (même contenu)", "events": 0}
        report = ingest_body(app, feed, got.path, now.astimezone(app.zone).date(), now)
        events = _events(report)
        words = _words(report, events)
        record_success(
            app.engine,
            feed,
            now=now,
            outcome=words,
            events=events,
            etag=got.etag,
            last_modified=got.last_modified,
            content_hash=got.sha256,
        )
        return {"state": words, "events": events, "report": report.to_dict()}
    finally:
        got.path.unlink(missing_ok=True)


def active_departements(app: App) -> list[str]:
    """Départements covered by the active campaigns ([] when one of them covers all of France)."""
    with app.engine.connect() as conn:
        campaigns = active_campaigns(conn)
    out: set[str] = set()
    for campaign in campaigns:
        territory = campaign.spec.effective_territory()
        if territory.is_empty():
            return []
        for code in territory.communes_covered():
            info = commune(code)
            if info:
                out.add(info.departement)
    return sorted(out)


def _bodacc_api(app: App, feed: FeedRow, http: FeedHttp, now: dt.datetime) -> dict[str, Any]:
    today = now.astimezone(app.zone).date()  # the local day (feeds run around the clock; UTC's is wrong till 1-2 h)
    last = feed.cursor.get("last_date")
    # Resume on the last publication day seen (inclusive: it may have been read before it was complete).
    lookback = dt.timedelta(days=app.settings.bodacc_lookback_days)
    since = dt.date.fromisoformat(last) if last else today - lookback
    deps = active_departements(app)
    dest = _workdir(app, feed) / "records.jsonl"
    try:
        with open(dest, "w", encoding="utf-8") as out:
            pull = pull_bodacc(
                http,
                feed.url,
                out,
                since=since,
                until=today,
                departements=deps,
                all_departements=sorted(all_departements()),
            )
        cursor = {"last_date": (pull.last_date or since).isoformat(), "departements": deps}
        digest = file_sha256(dest)
        if pull.records == 0 or digest == feed.content_hash:
            words = "rien de nouveau" if pull.records == 0 else "inchangé (mêmes annonces)"
            record_success(
                app.engine, feed, now=now, outcome=f"{words} depuis le {since:%d/%m/%Y}", cursor=cursor
            )
            return {"state": words, "events": 0}
        report = ingest_body(app, feed, dest, today, now)
        events = _events(report)
        words = (
            f"{_words(report, events)}, {pull.records} annonces en {pull.pages} pages "
            f"depuis le {since:%d/%m/%Y}"
        )
        if pull.truncated:
            words += f"; trop d'annonces pour une requête: {'; '.join(pull.truncated)}"
        record_success(
            app.engine, feed, now=now, outcome=words, events=events, content_hash=digest, cursor=cursor
        )
        return {"state": words, "events": events, "report": report.to_dict()}
    finally:
        dest.unlink(missing_ok=True)


def _sirene_api(app: App, feed: FeedRow, http: FeedHttp, now: dt.datetime) -> dict[str, Any]:
    last = feed.cursor.get("since")
    # Sirene dates its processing in French local time, without a zone: the deployment's zone.
    since = (dt.datetime.fromisoformat(last) if last
             else (now - dt.timedelta(days=1)).astimezone(app.zone).replace(tzinfo=None))
    dest = _workdir(app, feed) / "etablissements.csv"
    http.min_interval = 60.0 / app.settings.sirene_api_per_minute
    try:
        with open(dest, "w", encoding="utf-8", newline="") as out:
            key = app.settings.sirene_api_key
            pull = pull_sirene(http, feed.url, out, since=since, key=key.get_secret_value() if key else None)
        cursor = {"since": pull.last_processed or since.isoformat(timespec="seconds")}
        if pull.rows == 0:
            record_success(
                app.engine,
                feed,
                now=now,
                cursor=cursor,
                outcome=f"rien de nouveau depuis le {since:%d/%m/%Y %H:%M}",
            )
            return {"state": "rien de nouveau", "events": 0}
        digest = file_sha256(dest)
        if digest == feed.content_hash:
            record_success(
                app.engine, feed, now=now, outcome="inchangé (mêmes établissements)", cursor=cursor
            )
            return {"state": "inchangé", "events": 0}
        report = ingest_body(app, feed, dest, now.astimezone(app.zone).date(), now)
        events = _events(report)
        words = f"{_words(report, events)}, {pull.rows} établissements en {pull.pages} pages"
        record_success(
            app.engine, feed, now=now, outcome=words, events=events, content_hash=digest, cursor=cursor
        )
        return {"state": words, "events": events, "report": report.to_dict()}
    finally:
        dest.unlink(missing_ok=True)


WATCHERS = {"bodacc-api": _bodacc_api, "sirene-api": _sirene_api}


def watch_feed(app: App, feed: FeedRow, *, now: dt.datetime, http: FeedHttp | None = None) -> dict[str, Any]:
    """Fetch one feed and ingest what changed; every failure is recorded in plain words, never raised."""
    own = http is None
    http = http or feed_http(app)
    http.allow_local = bool(feed.local)  # only a feed marked local may reach this machine or a private network
    try:
        outcome = WATCHERS.get(feed.format, _file_feed)(app, feed, http, now)
        return {"feed": feed.name, "failed": False, **outcome}
    except Exception as exc:  # noqa: BLE001 - whatever fails, the feed is released with its reason
        known = isinstance(exc, (FetchError, IngestFailed))
        retry_at = None
        if isinstance(exc, FetchError) and exc.retry_after:
            retry_at = now + dt.timedelta(seconds=exc.retry_after)
        reason = str(exc) if known else f"erreur inattendue ({type(exc).__name__}), détail dans le journal"
        error = f"{reason}; rien n'a été enregistré, nouvel essai au prochain passage"
        record_failure(app.engine, feed, now=now, error=error, retry_at=retry_at)
        logger.warning("feed %s: %s", feed.name, error, exc_info=not known)
        return {"feed": feed.name, "failed": True, "state": f"échec: {reason}", "events": 0}
    finally:
        if own:
            http.close()


def watch_due_feeds(
    app: App, *, now: dt.datetime | None = None, only: str | None = None, http: FeedHttp | None = None
) -> list[dict[str, Any]]:
    """Watch every due feed (`only`: "bodacc" or "sirene" narrows to that source); one outcome per feed."""
    now = now or app.clock()
    # The claim lasts longer than any fetch; a run that dies leaves the feed due again after it.
    lease = dt.timedelta(minutes=30)
    return [
        watch_feed(app, feed, now=now, http=http)
        for feed in due_feeds(app.engine, now, only)
        if claim_feed(app.engine, feed, now, lease)
    ]
