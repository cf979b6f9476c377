"""Operator alerts: the three situations worth an e-mail, sent through Déclic's own e-mail channel.

Why here, in the flows, rather than as Prefect automations: an automation needs Prefect's trigger service
and a deployment to run its action (a `notify` flow picked up by a runner or a worker), which the embedded
default (`declic plan`, `declic dispatch`, tests: flows run in-process) does not have, and which fails
exactly when the cluster is unwell. These checks ship with the flows themselves, so `declic serve`, a
Prefect server with workers and a flow run by hand behave the same:

- a `plan` or `dispatch` run that fails for the second time in a row (an `on_failure` / `on_crashed` hook
  reads the previous runs of the same deployment, or flow, from the Prefect API: one e-mail when the second
  failure happens, not one per failing run after it);
- a campaign paused on its error rate during a `dispatch` run (one e-mail naming each campaign and why);
- a feed failing for a day (the `watch-feeds` run in which a feed's last success, or its creation, becomes
  older than a day; one e-mail per feed and per failure streak).

The e-mail goes to `DECLIC_OPERATOR_EMAILS` over the same SMTP relay and settings as every message
(`integrations.email_smtp`), built from the settings only: an alert about a store that cannot be reached
must not need the store. No operator address: nothing is sent, and the run's log says why.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("declic.alerts")
DAY = dt.timedelta(days=1)
FAILED_STATES = ("FAILED", "CRASHED")


def operator_addresses(settings) -> list[str]:
    """The operator addresses of `DECLIC_OPERATOR_EMAILS` (comma or semicolon separated)."""
    raw = getattr(settings, "operator_emails", None) or ""
    return [a.strip() for a in raw.replace(";", ",").split(",") if a.strip()]


def send_alert(settings, subject: str, body: str) -> int:
    """E-mail `subject` and `body` to every operator; returns how many were accepted by the relay."""
    from integrations.base import OutgoingMessage
    from integrations.email_smtp import SmtpChannel
    from orchestrator.core.outcomes import Outcome

    addresses = operator_addresses(settings)
    if not addresses:
        log.warning("alerte non envoyée (DECLIC_OPERATOR_EMAILS est vide) : %s", subject)
        return 0
    host = urlparse(settings.base_url).hostname or "declic.local"
    batch = [OutgoingMessage(message_id=0, channel="email", recipient=address, subject=f"[Déclic] {subject}",
                             body=body + "\n\n-- \nDéclic, alerte d'exploitation automatique.\n",
                             rfc_message_id=f"<declic.alerte.{uuid.uuid4().hex}@{host}>")
             for address in addresses]
    channel = SmtpChannel.from_settings(settings)
    try:
        results = channel.send(batch)
    finally:
        channel.close()
    sent = sum(r.outcome is Outcome.SENT for r in results)
    if sent < len(batch):
        log.warning("alerte « %s » : %d destinataire(s) sur %d ont refusé ou n'ont pas répondu",
                    subject, len(batch) - sent, len(batch))
    return sent


# --- the decisions (pure) ---


def consecutive_failures(states: Sequence[str]) -> int:
    """How many of the newest terminal runs (newest first, state types) failed in a row."""
    count = 0
    for state in states:
        if state not in FAILED_STATES:
            break
        count += 1
    return count


def run_failed_alert(flow_name: str, run_name: str, error: str, states: Sequence[str]) -> tuple[str, str] | None:
    """(subject, body) when this failed run is the second failure in a row, else None."""
    if consecutive_failures(states) != 2:
        return None
    subject = f"le flux {flow_name} a échoué deux fois de suite"
    body = (f"Bonjour,\n\nLes deux dernières exécutions du flux « {flow_name} » ont échoué, la dernière étant "
            f"« {run_name} ».\nErreur : {error}\n\n"
            "Ouvrez l'interface Prefect (exécutions du flux) ou lancez « declic status » pour en savoir plus. "
            "Tant que le problème dure, aucun autre message ne vous sera envoyé pour ce flux.")
    return subject, body


def paused_alert(paused: Sequence[tuple[str, str | None]]) -> tuple[str, str] | None:
    """(subject, body) naming each campaign paused on its error rate, else None."""
    if not paused:
        return None
    names = ", ".join(name for name, _ in paused)
    subject = (f"campagne mise en pause : {names}" if len(paused) == 1
               else f"{len(paused)} campagnes mises en pause : {names}")
    lines = ["Bonjour,", "", "Des envois ont trop souvent échoué : Déclic a mis en pause "
             + ("cette campagne." if len(paused) == 1 else "ces campagnes."), ""]
    lines += [f"- {name} : {reason or 'sans motif enregistré.'}" for name, reason in paused]
    return subject, "\n".join(lines)


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


def feeds_alert(feeds: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """(subject, body) for the feeds failing for a day, else None."""
    if not feeds:
        return None
    subject = f"flux en échec depuis un jour : {', '.join(name for name, _ in feeds)}"
    lines = ["Bonjour,", "", "Ces flux n'ont réussi aucune collecte depuis au moins un jour :", ""]
    lines += [f"- {name} : {state}" for name, state in feeds]
    lines += ["", "« declic feeds list » montre leur état ; la collecte reprendra d'elle-même une fois la source "
              "revenue."]
    return subject, "\n".join(lines)
