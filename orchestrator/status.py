"""`declic status`: what waits, what is due, what failed, per channel; the feeds; the last run of each flow.

The outbox figures come from the store (the source of truth). Flow runs come from the Prefect API when one
is configured and answers; otherwise the report says so in plain words instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy import case, func, inspect, select

from orchestrator.settings import Settings
from store.db import get_engine
from store.models import Message

MESSAGES = Message.__table__


def outbox_by_channel(engine, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Per channel: queued (planned, not yet due), due, claimed, failed, sent in the last 24 hours."""
    m = MESSAGES.c
    planned = m.status == "planned"
    stmt = select(
        m.channel,
        func.sum(case((planned & (m.due_at > now), 1), else_=0)),
        func.sum(case((planned & (m.due_at <= now), 1), else_=0)),
        func.sum(case((m.status == "claimed", 1), else_=0)),
        func.sum(case((m.status == "failed", 1), else_=0)),
        func.sum(case(((m.status == "sent") & (m.sent_at >= now - dt.timedelta(days=1)), 1), else_=0)),
    ).group_by(m.channel).order_by(m.channel)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    keys = ("queued", "due", "claimed", "failed", "sent_24h")
    return {row[0]: {k: int(v or 0) for k, v in zip(keys, row[1:], strict=True)} for row in rows}


def unknown_by_campaign(engine, now: dt.datetime) -> dict[str, int]:
    """Messages whose fate is unknown (handed over, no answer recorded: the dispatcher stopped), by campaign;
    a handed-over message whose lease ran out counts even before a dispatcher marks it."""
    from store.models import Campaign

    m, c = MESSAGES.c, Campaign.__table__.c
    lapsed = (m.status == "handed_over") & (m.lease_until < now)
    stmt = (select(c.name, func.count()).join(Campaign.__table__, c.id == m.campaign_id)
            .where((m.status == "unknown") | lapsed).group_by(c.name).order_by(c.name))
    with engine.connect() as conn:
        return {name: int(count) for name, count in conn.execute(stmt).all()}


def feeds_state(engine) -> list[dict[str, Any]] | None:
    """Each watched feed in plain words, or None when this store has no feeds table yet."""
    if "feed" not in inspect(engine).get_table_names():
        return None
    from store.feeds import list_feeds

    return [feed.describe() for feed in list_feeds(engine)]


def last_runs(api_url: str | None, timeout: float = 3.0) -> dict[str, Any]:
    """The last run of each flow from the Prefect API: {"available": bool, "note": str, "flows": {...}}."""
    if not api_url:
        return {"available": False, "flows": {},
                "note": "pas d'API Prefect configurée (PREFECT_API_URL): les flows tournent en local, "
                        "sans historique consultable; `declic serve` ou un serveur Prefect en gardent un"}
    import requests

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
    except (requests.RequestException, ValueError) as exc:
        return {"available": False, "flows": {},
                "note": f"API Prefect injoignable ({api_url}): {type(exc).__name__}; "
                        "les chiffres de la base ci-dessus restent exacts"}


def collect(settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """The whole status report as plain data."""
    now = now or dt.datetime.now(dt.UTC)
    engine = get_engine(settings.resolved_database_url)
    unknown = unknown_by_campaign(engine, now)
    return {"at": now.isoformat(timespec="seconds"), "outbox": outbox_by_channel(engine, now),
            "unknown": {"total": sum(unknown.values()), "by_campaign": unknown},
            "feeds": feeds_state(engine), "prefect": last_runs(os.environ.get("PREFECT_API_URL"))}


def render(report: dict[str, Any], console) -> None:
    """Print the report as tables a person reads."""
    from rich.table import Table

    table = Table(title=f"Messages par canal ({report['at']})")
    for col in ("canal", "en attente", "à envoyer", "en cours", "en échec", "envoyés 24 h"):
        table.add_column(col, justify="left" if col == "canal" else "right")
    for channel, c in report["outbox"].items():
        table.add_row(channel, *(f"{c[k]:,}".replace(",", "\u202f")
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

    feeds = report["feeds"]
    if feeds is None:
        console.print("Flux surveillés: pas encore de table (lancez `declic init`).")
    elif not feeds:
        console.print("Flux surveillés: aucun (`declic feeds add`).")
    else:
        ft = Table(title="Flux surveillés")
        for col in ("flux", "état", "dernier essai", "dernier succès", "événements", "dernière erreur"):
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
    for col in ("flow", "exécution", "état", "début", "fin"):
        rt.add_column(col)
    for name, run in prefect["flows"].items():
        rt.add_row(name, run.get("run") or "-", run["state"], run.get("start") or "-", run.get("end") or "-")
    console.print(rt if prefect["flows"] else "Aucun flow encore enregistré dans Prefect.")
