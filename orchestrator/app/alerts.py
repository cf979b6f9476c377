"""Operator alerts: the three situations worth an e-mail, queued in Déclic's own outbox and sent by the dispatcher.

- a `plan` or `dispatch` run failing for the second time in a row;
- a campaign paused on its error rate during a `dispatch` run (the run emits `declic.campaign.paused`);
- a feed failing for a day (the `watch-feeds` run in which a feed's last success, or its creation, becomes
  older than a day emits `declic.feed.failing`).

Runs of the deployments are watched by Prefect automations shipped with them: the triggers of the
`notify-operators` deployment in prefect.yaml, created with the deployments by `prefect deploy`
(scripts/scale_out.py) and by `declic serve`. Two failed runs of `plan` or `dispatch` within an hour, or one of
Déclic's two events, run `notify-operators`, which calls this module. A run that is no deployment's
(`declic dispatch`, `declic demo`, tests: flows in-process, which no automation watches) calls the same
functions itself. Either way an alert becomes one notice per address of `DECLIC_OPERATOR_EMAILS` (table `notice`,
which also carries the ambassadors' callbacks), keyed by its cause, so the same cause is never queued twice (an
automation firing again on the same streak, a hook and an automation), and the dispatcher sends it at once
(`dispatch_notices`; every dispatch run retries what the relay refused).

An unreachable store is the likeliest cause of two failing runs: when the outbox cannot be written, the alert
goes straight to the relay, built from the settings alone. No operator address: nothing is queued, and the
run's log says why.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from integrations.base import OutgoingMessage
from orchestrator.app.bootstrap import App
from orchestrator.app.dispatch import dispatch_notices
from orchestrator.core.labels import datetime_fr
from orchestrator.core.outcomes import Outcome
from store.outbox import campaigns_paused_since, feed_outage, paused_campaign, queue_notices

log = logging.getLogger("declic.alerts")
DAY = dt.timedelta(days=1)
FAILED_STATES = ("FAILED", "CRASHED")
FLOW_LABELS = {"plan": "La planification (plan)", "dispatch": "L'envoi des messages (dispatch)"}
SIGNATURE = "\n\n-- \nDéclic, alerte d'exploitation automatique.\n"


@dataclass(frozen=True)
class Alert:
    """One alert: what it is about, the key of its cause (the same cause, the same key), its e-mail."""

    kind: str  # run_failed | campaign_paused | feed_failing
    cause_key: str
    subject: str
    body: str


def operator_addresses(settings) -> list[str]:
    """The operator addresses of `DECLIC_OPERATOR_EMAILS` (comma or semicolon separated)."""
    raw = getattr(settings, "operator_emails", None) or ""
    return [a.strip() for a in raw.replace(";", ",").split(",") if a.strip()]


# --- the decisions (pure) ---


def consecutive_failures(states: Sequence[str]) -> int:
    """How many of the newest terminal runs (newest first, state types) failed in a row."""
    count = 0
    for state in states:
        if state not in FAILED_STATES:
            break
        count += 1
    return count


def run_failed_alert(flow_name: str, run_name: str, error: str, states: Sequence[str], ended_at: dt.datetime,
                     streak: str, zone: str | ZoneInfo) -> Alert | None:
    """The alert when this failed run (first of `states`, newest first) is at least the second failure in a row.

    `streak` names the failure streak (the deployment, or flow, and its last success before it): the runs that
    fail after the second one report the same streak, which is queued only once."""
    if consecutive_failures(states) < 2:
        return None
    what = FLOW_LABELS.get(flow_name, f"Le flux Prefect « {flow_name} »")
    body = (f"Bonjour,\n\n{what} a échoué deux fois de suite. Dernier échec : {datetime_fr(ended_at, zone)}, "
            f"exécution « {run_name} ».\nErreur : {error}\n\n"
            "Que faire : ouvrez cette exécution dans l'interface Prefect pour lire son journal, ou lancez "
            "« declic status ». Rien n'est perdu : ce qui attend sera traité à la première exécution réussie.\n"
            "Tant que les échecs se suivent, vous ne recevrez pas d'autre alerte à ce sujet.")
    return Alert("run_failed", f"run_failed:{streak}", f"[Déclic] {what} a échoué deux fois de suite", body)


def paused_alert(campaign_id: int, name: str, reason: str | None, paused_at: dt.datetime,
                 zone: str | ZoneInfo) -> Alert:
    """The alert about a campaign Déclic paused on its error rate (`reason` says why, and how to resume)."""
    lines = ["Bonjour,", "", f"Déclic a mis en pause la campagne « {name} » le {datetime_fr(paused_at, zone)} : "
             "trop de ses envois ont échoué.", ""]
    lines.append(reason or "Aucun motif enregistré.")
    if "campaigns resume" not in (reason or ""):
        lines += ["", "Que faire : vérifiez la liste des destinataires ou le modèle du message, puis relancez la "
                      f"campagne avec « declic campaigns resume {name} »."]
    return Alert("campaign_paused", f"campaign_paused:{campaign_id}:{paused_at.isoformat()}",
                 f"[Déclic] Campagne « {name} » mise en pause", "\n".join(lines))


def failing_feeds(before: Mapping[str, tuple[dt.datetime, dt.datetime | None]],
                  outcomes: Sequence[Mapping[str, Any]], now: dt.datetime) -> list[tuple[str, str]]:
    """Feeds whose failure in this run makes a day without success: (name, state in plain words).

    `before` holds, per feed and read before the run, (last success or creation, last fetch). A feed is
    named once per streak: in the run where "a day without success" starts to be true.
    """
    out = []
    for outcome in outcomes:
        if not outcome.get("failed") or outcome["feed"] not in before:
            continue
        since, last_fetch = before[outcome["feed"]]
        if now - since >= DAY and (last_fetch is None or last_fetch - since < DAY):
            out.append((outcome["feed"], str(outcome.get("state") or "échec")))
    return out


def feed_alert(name: str, since: dt.datetime, failures: int, last_error: str | None, now: dt.datetime,
               zone: str | ZoneInfo) -> Alert | None:
    """The alert about a feed without success for a day (`since`: its last success, or its creation), None
    when it is not (or no longer) the case."""
    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    if failures < 1 or now - since < DAY:
        return None
    body = (f"Bonjour,\n\nLe flux « {name} » n'a réussi aucune collecte depuis le {datetime_fr(since, zone)} "
            f"({failures} échec{'s' if failures > 1 else ''} de suite).\nDernière erreur : "
            f"{last_error or 'non enregistrée'}\n\n"
            "Que faire : « declic feeds list » montre son état ; vérifiez l'adresse de la source et son jeton. "
            "La collecte reprendra d'elle-même une fois la source revenue.")
    return Alert("feed_failing", f"feed_failing:{name}:{since.isoformat()}",
                 f"[Déclic] Flux « {name} » sans succès depuis un jour", body)


# --- queued in the operators' outbox, sent by the dispatcher ---


def queue(app: App, alert: Alert) -> int:
    """Queue `alert` for every operator address; returns how many rows are new (0: already queued, or no
    address). When the store cannot be written, the alert goes straight to the relay instead."""
    addresses = operator_addresses(app.settings)
    if not addresses:
        log.warning("alerte non envoyée (DECLIC_OPERATOR_EMAILS est vide) : %s", alert.subject)
        return 0
    try:
        with app.engine.begin() as conn:
            return queue_notices(conn, alert.kind, alert.cause_key, addresses, alert.subject, alert.body + SIGNATURE,
                                 app.clock().astimezone(dt.UTC))
    except SQLAlchemyError:
        log.exception("file des alertes injoignable : alerte « %s » envoyée directement au relais", alert.subject)
        send_direct(app, alert, addresses)
        return 0


def notify(app: App, alert: Alert | None) -> Counter:
    """Queue `alert` (if any) and send what is due in the operators' outbox at once; returns the dispatcher's
    counts (sent, retry, failed)."""
    if alert is not None and queue(app, alert):
        log.info("alerte mise en file : %s", alert.subject)
    try:
        return dispatch_notices(app)
    except SQLAlchemyError:  # queued or sent directly already: the next dispatch run sends what waits
        log.exception("alertes en file non envoyées pour l'instant")
        return Counter()


def paused_since(app: App, since: dt.datetime) -> list:
    """(id, name) of the campaigns paused at or after `since` and still paused: those a dispatch run announces."""
    with app.engine.connect() as conn:
        return campaigns_paused_since(conn, since)


def notify_campaign_paused(app: App, campaign_id: int) -> Counter:
    """Alert the operators that Déclic paused this campaign (nothing when it is no longer paused)."""
    with app.engine.connect() as conn:
        row = paused_campaign(conn, campaign_id)
    if row is None or row.status != "paused" or row.paused_at is None:
        log.info("campagne %s : plus en pause, pas d'alerte", campaign_id)
        return notify(app, None)
    return notify(app, paused_alert(row.id, row.name, row.paused_reason, row.paused_at, app.zone))


def notify_feed_failing(app: App, name: str, now: dt.datetime | None = None) -> Counter:
    """Alert the operators that this feed has had no success for a day at `now` (the clock's by default);
    nothing once it has recovered."""
    with app.engine.connect() as conn:
        row = feed_outage(conn, name)
    alert = None
    if row is not None:
        alert = feed_alert(row.name, row.last_success_at or row.created_at, row.failures, row.last_error,
                           (now or app.clock()).astimezone(dt.UTC), app.zone)
    if alert is None:
        log.info("flux %s : pas (ou plus) en échec depuis un jour, pas d'alerte", name)
    return notify(app, alert)


def send_direct(app: App, alert: Alert, addresses: Sequence[str]) -> int:
    """E-mail `alert` straight to the relay (the outbox cannot be written); returns how many were accepted.
    The e-mail channel reads the store only for a campaign's sender, which an alert has not."""
    host = urlparse(app.settings.base_url).hostname or "declic.local"
    batch = [OutgoingMessage(message_id=0, channel="email", recipient=address, subject=alert.subject,
                             body=alert.body + SIGNATURE, rfc_message_id=f"<declic.alerte.{uuid.uuid4().hex}@{host}>")
             for address in addresses]
    results = app.channel("email").send(batch)
    sent = sum(r.outcome is Outcome.SENT for r in results)
    if sent < len(batch):
        log.warning("alerte « %s » refusée ou sans réponse pour %d adresses sur %d", alert.subject,
                    len(batch) - sent, len(batch))
    return sent
