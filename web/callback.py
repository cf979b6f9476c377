"""Callback requests from the landing page, the web side: the ambassador's notification e-mail (rendered here). The
slots, when the call is due and the request itself are `orchestrator.app.callbacks`'s."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from integrations.base import OutgoingMessage
from orchestrator.app.callbacks import SLOTS


def notification(
    *,
    task_id: int,
    to: str,
    ambassador_name: str,
    business: dict,
    phone: str,
    slot: str,
    due_at: dt.datetime,
    note: str,
    dashboard_url: str,
    zone: ZoneInfo,
) -> OutgoingMessage:
    """The e-mail telling an ambassador that an owner asked to be called back (the time in `zone`, the App's)."""
    local = due_at.astimezone(zone)
    days = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
    who = business.get("name") or "Une entreprise"
    metier = business.get("metier") or ""
    commune = business.get("commune") or ""
    lines = [
        f"Bonjour {ambassador_name},",
        "",
        f"{who}{f' ({metier}' + (f', {commune}' if commune else '') + ')' if metier else ''} "
        "demande un rappel.",
        f"Numéro : {phone}",
        f"Moment préféré : {SLOTS[slot][0]}, "
        f"à partir du {days[local.weekday()]} {local:%d/%m} à {local:%H} h.",
    ]
    if note:
        lines.append(f"Son message : « {note} »")
    lines += ["", f"Votre liste d'appels : {dashboard_url}", "", "Merci pour votre aide.", "L'équipe Déclic"]
    return OutgoingMessage(
        message_id=-task_id,
        channel="email",
        recipient=to,
        subject=f"À rappeler : {who}",
        body="\n".join(lines) + "\n",
        rfc_message_id=f"<declic.callback.{task_id}@declic.local>",
    )
