"""`declic messages show SIRET`: did this business receive it, when, on which channel? Mounted by `mount(app)`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.settings import get_settings

console = Console()
messages_app = typer.Typer(help="Les messages d'une entreprise et leur historique.", no_args_is_help=True)

CHANNELS = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel", "webhook": "webhook"}
# Message statuses and history steps as an operator says them.
STEPS = {
    "planned": "prévu", "claimed": "pris en charge", "handed_over": "transmis au serveur ou au prestataire",
    "sent": "envoyé (accepté par le serveur)", "delivered": "remis",
    "failed": "échec définitif", "retry": "nouvel essai prévu", "cancelled": "annulé", "bounced": "rejeté",
    "delayed": "retardé", "opened": "ouvert", "clicked": "cliqué", "click": "clic sur un lien",
    "unsubscribe": "désinscription", "callback_request": "demande de rappel", "not_for_me": "pas pour moi",
}
REASONS = {"opted_out": "désinscrit", "closed": "entreprise fermée", "not_to_contact": "à ne pas contacter",
           "campaign_paused": "campagne en pause", "campaign_ended": "campagne terminée", "opt-out": "désinscrit"}
RECEIVED = ("sent", "delivered")


def _local(value: dt.datetime | None, timezone: str) -> str:
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y à %H:%M:%S")


def _step(status: str) -> str:
    return STEPS.get(status, status)


def _detail(detail: str | None) -> str:
    if not detail:
        return ""
    return REASONS.get(detail, detail)


def answer(found: dict, timezone: str) -> str:
    """The one-line answer: received or not, when, on which channel."""
    received = [m for m in found["messages"] if m["status"] in RECEIVED]
    if received:
        parts = [f"{CHANNELS.get(m['channel'], m['channel'])} le {_local(m['sent_at'], timezone)}"
                 f" (campagne « {m['campaign']} »)" for m in received]
        return f"Reçu : oui, {len(received)} message(s) : " + " ; ".join(parts) + "."
    if not found["messages"]:
        return "Reçu : non, aucun message n'a été prévu pour cette entreprise."
    waiting = [m for m in found["messages"] if m["status"] in ("planned", "claimed")]
    if waiting:
        first = min(waiting, key=lambda m: m["due_at"])
        if first["campaign_status"] == "paused":
            why = f" : {first['paused_reason']}" if first["paused_reason"] else "."
            return f"Reçu : pas encore ; la campagne « {first['campaign']} » est en pause{why}"
        return (f"Reçu : pas encore ; prochain envoi prévu le {_local(first['due_at'], timezone)} "
                f"par {CHANNELS.get(first['channel'], first['channel'])}.")
    return "Reçu : non, aucun message n'est parti (voir les raisons ci-dessous)."


@messages_app.command("show")
def show(
    siret: str,
    json_out: Annotated[bool, typer.Option("--json", help="print the history as JSON")] = False,
) -> None:
    """Every message of one business (SIRET) with its history: planned, sent, failed, clicked..."""
    from store.db import get_engine
    from store.outbox import business_messages

    settings = get_settings()
    siret = "".join(siret.split())
    with get_engine(settings.resolved_database_url).connect() as conn:
        found = business_messages(conn, siret)
    if found is None:
        console.print(f"[red]Aucune entreprise avec le SIRET {siret}.[/red]")
        raise typer.Exit(1)
    if json_out:
        print(json.dumps({**found, "answer": answer(found, settings.timezone)}, ensure_ascii=False, default=str))
        return
    tz = settings.timezone
    flags = []
    if found["state"] != "active":
        flags.append("fermée")
    if found["do_not_contact"]:
        flags.append("à ne pas contacter")
    if found["opted_out"]:
        flags.append("désinscrite : " + ", ".join(found["opted_out"]))
    console.print(f"[bold]{found['name'] or 'Entreprise'}[/bold] (SIRET {found['siret']})"
                  + (f" — {' ; '.join(flags)}" if flags else ""))
    console.print(answer(found, tz))
    for m in found["messages"]:
        title = (f"Message {m['id']} : campagne « {m['campaign']} », étape {m['step'] + 1}, "
                 f"{CHANNELS.get(m['channel'], m['channel'])} à {m['recipient'] or '-'} — {_step(m['status'])}")
        table = Table(title=title, title_justify="left")
        table.add_column("quand")
        table.add_column("étape")
        table.add_column("détail")
        for step in m["history"]:
            table.add_row(_local(step["at"], tz), _step(step["status"]), _detail(step["detail"]))
        console.print(table)
        extra = []
        if m["attempts"]:
            extra.append(f"tentatives : {m['attempts']}")
        if m["rfc_message_id"]:
            extra.append(f"Message-ID : {m['rfc_message_id']}")
        if m["provider_id"]:
            extra.append(f"réponse du serveur : {m['provider_id']}")
        if m["last_error"] and m["status"] not in RECEIVED:
            extra.append(f"dernière erreur : {_detail(m['last_error'])}")
        if extra:
            console.print("  " + " · ".join(extra))


def mount(app: typer.Typer) -> None:
    """Add `messages` to the main CLI."""
    app.add_typer(messages_app, name="messages")
