"""`declic status`: what waits, what is due, what failed, per channel; the feeds; the last run of each flow.

The outbox figures come from the store (the source of truth). Flow runs come from the Prefect API when one
is configured and answers; otherwise the report says so in plain words instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any
from zoneinfo import ZoneInfo

import requests
from rich.table import Table

from orchestrator.app.bootstrap import App, unconfigured_channels
from orchestrator.app.settings import Settings
from orchestrator.core.labels import datetime_fr, label
from store.feeds import list_feeds
from store.ops_metrics import has_feeds_table, outbox_by_channel, unknown_by_campaign


def last_runs(api_url: str | None, timeout: float = 3.0) -> dict[str, Any]:
    """The last run of each flow from the Prefect API: {"available": bool, "note": str, "flows": {...}}."""
    if not api_url:
        return {"available": False, "flows": {},
                "note": "aucun serveur Prefect trouvé (ni PREFECT_API_URL, ni « declic serve » lancé ici) : "
                        "les flows tournent en local, sans historique consultable ; « declic serve » en garde un"}

    try:
        reply = requests.post(f"{api_url}/flows/filter", json={"limit": 200}, timeout=timeout)
        reply.raise_for_status()
        flows = {f["id"]: f["name"] for f in reply.json()}
        out: dict[str, Any] = {}
        for flow_id, name in sorted(flows.items(), key=lambda kv: kv[1]):
            runs = requests.post(f"{api_url}/flow_runs/filter", timeout=timeout, json={
                "flows": {"id": {"any_": [flow_id]}},
                "flow_runs": {"start_time": {"is_null_": False}},
                "sort": "START_TIME_DESC", "limit": 1}).json()
            if runs:
                run = runs[0]
                out[name] = {"run": run["name"], "state": run["state_name"], "start": run["start_time"],
                             "end": run["end_time"], "message": (run.get("state") or {}).get("message")}
            else:
                out[name] = {"run": None, "state": "jamais lancé"}
        return {"available": True, "flows": out, "note": f"API Prefect {api_url}"}
    except (requests.RequestException, ValueError):
        return {"available": False, "flows": {},
                "note": f"serveur Prefect injoignable ({api_url}) : « declic serve » est-il lancé ? "
                        "Les chiffres de la base ci-dessus restent exacts"}


def prefect_api_url(settings: Settings) -> str | None:
    """PREFECT_API_URL, else the local server `declic serve` noted under DECLIC_HOME while it runs."""
    from orchestrator.prefect.serve import read_api_url  # lazy: Prefect, 1.5 s, only when a server is asked

    return os.environ.get("PREFECT_API_URL") or read_api_url(settings.home)


def collect(app: App, now: dt.datetime) -> dict[str, Any]:
    """The whole status report as plain data, as of `now` (the App's clock)."""
    with app.transaction() as unit:
        outbox = outbox_by_channel(unit.conn, now)
        unknown = unknown_by_campaign(unit.conn, now)
        feeds = has_feeds_table(unit.conn)  # None below: a store not upgraded since feeds came
    return {"at": now.isoformat(timespec="seconds"), "outbox": outbox,
            "unknown": {"total": sum(unknown.values()), "by_campaign": unknown},
            "unconfigured_channels": unconfigured_channels(app.settings),
            "feeds": [feed.describe() for feed in list_feeds(app.engine)] if feeds else None,
            "prefect": last_runs(prefect_api_url(app.settings))}


def missing_words(reason: str) -> str:
    """A channel's configuration problem in French: the settings it lacks ("il manque DECLIC_SMS_URL")."""
    names = list(dict.fromkeys(re.findall(r"DECLIC_[A-Z0-9_]+", reason)))
    if not names:
        return "réglages incomplets"
    return "il manque " + " (ou ".join(names) + ")" * (len(names) - 1)


_STATES = {"Completed": "terminé", "Failed": "en échec", "Running": "en cours", "Scheduled": "prévu",
           "Pending": "en attente", "Cancelled": "annulé", "Crashed": "interrompu", "Late": "en retard",
           "Cancelling": "annulation en cours", "Paused": "en pause"}


def render(report: dict[str, Any], console, zone: ZoneInfo) -> None:
    """Print the report as tables a person reads, hours in `zone` (the deployment's)."""
    table = Table(title=f"Messages par canal ({datetime_fr(report['at'], zone)})")
    for col in ("Canal", "En attente", "À envoyer", "En cours", "En échec", "Envoyés en 24 h"):
        table.add_column(col, justify="left" if col == "Canal" else "right")
    for channel, c in report["outbox"].items():
        table.add_row(label("channel", channel), *(f"{c[k]:,}".replace(",", "\u202f")
                                 for k in ("queued", "due", "claimed", "failed", "sent_24h")))
    console.print(table if report["outbox"] else "Aucun message dans la base.")
    unknown = report.get("unknown") or {"total": 0}
    if unknown["total"]:
        campaigns = ", ".join(f"{name} : {count}" for name, count in unknown["by_campaign"].items())
        console.print(f"Messages à l'issue inconnue : {unknown['total']} ({campaigns}). Transmis au serveur ou au "
                      "prestataire, sans réponse enregistrée (le processus d'envoi s'est arrêté) : peut-être "
                      "partis. Rien n'est renvoyé sans vous : « declic messages resend --unknown » les renvoie.")
    else:
        console.print("Messages à l'issue inconnue : 0.")

    for channel, reason in (report.get("unconfigured_channels") or {}).items():
        console.print(f"Canal {label('channel', channel)} non configuré : {missing_words(reason)}. Ses étapes passent "
                      "au canal de repli tant qu'il manque.", highlight=False)
    feeds = report["feeds"]
    if feeds is None:
        console.print("Flux surveillés: pas encore de table (lancez `declic init`).")
    elif not feeds:
        console.print("Flux surveillés: aucun (`declic feeds add`).")
    else:
        ft = Table(title="Flux surveillés")
        for col in ("Flux", "État", "Dernier essai", "Dernier succès", "Événements", "Dernière erreur"):
            ft.add_column(col)
        for f in feeds:
            ft.add_row(f["name"], f["state"], f["last_fetch"] or "-", f["last_success"] or "-",
                       str(f["events"]), f["last_error"] or "-")
        console.print(ft)

    prefect = report["prefect"]
    if not prefect["available"]:
        console.print(f"Dernières exécutions: {prefect['note']}")
        return
    rt = Table(title=f"Dernière exécution de chaque flow ({prefect['note']})")
    for col in ("Flow", "Exécution", "État", "Début", "Fin"):
        rt.add_column(col)
    for name, run in prefect["flows"].items():
        rt.add_row(name, run.get("run") or "-", _STATES.get(run["state"], run["state"]),
                   datetime_fr(run.get("start"), zone) or "-", datetime_fr(run.get("end"), zone) or "-")
    console.print(rt if prefect["flows"] else "Aucun flow encore enregistré dans Prefect.")
