"""Callback requests from the landing page: the slots an owner may pick, when the call is due, the
ambassador's notification e-mail (rendered here, sent by the SMTP channel)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from integrations.base import OutgoingMessage
from orchestrator.core.windows import is_french_holiday

# key -> (label shown to the owner, start hour, end hour), local time. Inside the calling hours of
# integrations.call_rules (10-13 h, 14-20 h): a callback the owner asked for still keeps to them.
SLOTS: dict[str, tuple[str, int, int]] = {
    "matin": ("le matin (10 h - 13 h)", 10, 13),
    "apres_midi": ("l'après-midi (14 h - 17 h)", 14, 17),
    "soir": ("en fin de journée (17 h - 20 h)", 17, 20),
}


def callback_due(
    now: dt.datetime,
    slot: str,
    tz: str = "Europe/Paris",
    is_holiday: Callable[[dt.date], bool] = is_french_holiday,
) -> dt.datetime:
    """The start of the next chosen slot on a working day, at least one hour from now (aware UTC)."""
    _, start, _ = SLOTS[slot]
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    day = local_now.date()
    for _ in range(30):
        candidate = dt.datetime.combine(day, dt.time(start), zone)
        if day.weekday() < 5 and not is_holiday(day) and candidate >= local_now + dt.timedelta(hours=1):
            return candidate.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise ValueError("no working day in the next 30 days")  # cannot happen with French calendars


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
    tz: str = "Europe/Paris",
) -> OutgoingMessage:
    """The e-mail telling an ambassador that an owner asked to be called back."""
    local = due_at.astimezone(ZoneInfo(tz))
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
