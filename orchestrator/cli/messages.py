"""`declic messages show SIRET`: did this business receive it, when, on which channel? `declic messages resend
--unknown`: send again, deliberately, the messages whose fate is unknown. Mounted by `mount(app)`."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.labels import datetime_fr
from store.lookups import campaign_named
from store.outbox import business_messages, resend_unknown, unknown_messages

console = Console()
messages_app = typer.Typer(help="Les messages d'une entreprise et leur historique.", no_args_is_help=True)

CHANNELS = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel", "webhook": "webhook"}
# Message statuses and history steps as an operator says them.
STEPS = {
    "planned": "prévu", "claimed": "pris en charge", "handed_over": "transmis au serveur ou au prestataire",
    "sent": "envoyé (accepté par le serveur)", "delivered": "remis",
    "failed": "échec définitif", "retry": "nouvel essai prévu", "deferred": "reporté", "cancelled": "annulé",
    "bounced": "rejeté",
    "delayed": "retardé", "opened": "ouvert", "clicked": "cliqué", "click": "clic sur un lien",
    "unsubscribe": "désinscription", "callback_request": "demande de rappel", "not_for_me": "pas pour moi",
    "unknown": "issue inconnue (transmis, sans réponse enregistrée)", "resend": "renvoi décidé par un opérateur",
}
REASONS = {"opted_out": "désinscrit", "closed": "entreprise fermée", "not_to_contact": "à ne pas contacter",
           "campaign_paused": "campagne en pause", "campaign_ended": "campagne terminée", "opt-out": "désinscrit"}
RECEIVED = ("sent", "delivered")


def _local(value: dt.datetime | None, timezone: str) -> str:
    if value is None:
        return "-"
    return datetime_fr(value, timezone)


def _server_reply(reply: str) -> str:
    """An SMTP server's or provider's answer as an operator reads it: the code's meaning in French, the server's
    own words kept for `--json` ("250 Message accepted for delivery" -> "250 : accepté")."""
    text = reply.strip()
    code = text[:3]
    if code.isdigit():
        meaning = {"2": "accepté", "4": "refusé pour l'instant", "5": "refusé"}.get(code[0])
        if meaning:
            return f"{code} : {meaning}"
    return text


def _step(status: str) -> str:
    return STEPS.get(status, status)


def _detail(detail: str | None, status: str = "") -> str:
    if not detail:
        return ""
    if status == "claimed":
        return ""  # the worker's claim token ("vm:1234:ab12"): for machines only (--json)
    if status in RECEIVED or status in ("failed", "retry", "deferred", "bounced", "delayed"):
        detail = _server_reply(detail) if detail[:3].isdigit() else detail
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
    unknown = [m for m in found["messages"] if m["status"] == "unknown"]
    if unknown:
        m = unknown[0]
        return (f"Reçu : on ne sait pas ; le message par {CHANNELS.get(m['channel'], m['channel'])} du "
                f"{_local(m['sent_at'], timezone)} (campagne « {m['campaign']} ») a été transmis sans réponse "
                "enregistrée. « declic messages resend --unknown » le renvoie si vous le décidez.")
    in_flight = [m for m in found["messages"] if m["status"] == "handed_over"]
    if in_flight:
        return (f"Reçu : envoi en cours ; transmis le {_local(in_flight[0]['sent_at'], timezone)}, "
                "réponse du serveur attendue.")
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
    json_out: Annotated[bool, typer.Option("--json", help="l'historique en JSON (clés stables, en anglais)")] = False,
) -> None:
    """Tous les messages d'une entreprise (SIRET) et leur historique : prévu, envoyé, en échec, cliqué..."""
    app = bootstrap()
    settings = app.settings
    siret = "".join(siret.split())
    with app.transaction() as unit:
        found = business_messages(unit.conn, siret)
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
            table.add_row(_local(step["at"], tz), _step(step["status"]), _detail(step["detail"], step["status"]))
        console.print(table)
        extra = []
        if m["attempts"]:
            extra.append(f"tentatives : {m['attempts']}")
        if m["rfc_message_id"]:
            extra.append(f"Message-ID : {m['rfc_message_id']}")
        if m["provider_id"] and " " not in m["provider_id"].strip():
            # A provider's message id; an SMTP server's reply in its own words is in the history (and --json).
            extra.append(f"identifiant chez le prestataire : {m['provider_id']}")
        if m["last_error"] and m["status"] not in RECEIVED:
            extra.append(f"dernière erreur : {_detail(m['last_error'])}")
        if extra:
            console.print("  " + " · ".join(extra))


@messages_app.command("resend")
def resend(
    unknown: Annotated[bool, typer.Option("--unknown", help="les messages à l'issue inconnue")] = False,
    campaign: Annotated[str | None, typer.Option("--campaign", help="cette campagne seulement (son nom)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="renvoyer sans demander confirmation")] = False,
) -> None:
    """Renvoyer les messages à l'issue inconnue (transmis, sans réponse enregistrée) : nouveaux envois, dès
    maintenant."""
    if not unknown:
        console.print("[red]Précisez --unknown : seuls les messages à l'issue inconnue se renvoient ainsi.[/red]")
        raise typer.Exit(2)
    app = bootstrap()
    where = f" dans la campagne « {campaign} »" if campaign else ""
    with app.transaction() as unit:
        now = unit.now
        campaign_id = None
        if campaign is not None:
            row = campaign_named(unit.conn, campaign)
            if row is None:
                console.print(f"[red]Aucune campagne nommée « {campaign} ».[/red]")
                raise typer.Exit(1)
            campaign_id = row.id
        rows = unknown_messages(unit.conn, now, campaign_id)
    if not rows:
        console.print(f"Aucun message à l'issue inconnue{where} : rien à renvoyer.")
        return
    by_campaign: dict[str, int] = {}
    for row in rows:
        by_campaign[row.campaign] = by_campaign.get(row.campaign, 0) + 1
    console.print(f"{len(rows)} message(s) à l'issue inconnue{where} ("
                  + ", ".join(f"{name} : {count}" for name, count in by_campaign.items()) + "). Chacun a été "
                  "transmis au serveur ou au prestataire sans réponse enregistrée : il est peut-être arrivé, et le "
                  "renvoyer peut le faire recevoir deux fois.")
    if not yes and not typer.confirm("Les renvoyer maintenant ?", default=False):
        console.print("Rien n'a été renvoyé.")
        return
    with app.transaction() as unit:
        count = resend_unknown(unit.conn, [r.id for r in rows], now, f"un opérateur ({_who()})")
    console.print(f"{count} message(s) prévu(s) à nouveau : ils partent au prochain envoi (« declic dispatch »), "
                  "après une nouvelle vérification des désinscriptions et fermetures.")


def _who() -> str:

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "compte inconnu"


def mount(app: typer.Typer) -> None:
    """Add `messages` to the main CLI."""
    app.add_typer(messages_app, name="messages")
