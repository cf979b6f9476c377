"""Callback requests from the owner's page ("Rappelez-moi"): the slots an owner may pick, when the call is due, and
the request itself: a call task for the ambassador the planner chose (else the shared adviser queue), the number
and the consents the owner gave, one request per business a day, and the ambassador's e-mail queued in the outbox
of notices with them (sent by the dispatcher: a crash loses nothing; after a crash mid-send the ambassador may
get the e-mail twice, better than never)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.app.bootstrap import App
from orchestrator.core.windows import is_french_holiday
from store.conversions import callback_asked_since, request_callback
from store.outbox import queue_notices

# key -> (label shown to the owner, start hour, end hour), local time. Inside the calling hours of
# integrations.call_rules (10-13 h, 14-20 h): a callback the owner asked for still keeps to them.
SLOTS: dict[str, tuple[str, int, int]] = {
    "matin": ("le matin (10 h - 13 h)", 10, 13),
    "apres_midi": ("l'après-midi (14 h - 17 h)", 14, 17),
    "soir": ("en fin de journée (17 h - 20 h)", 17, 20),
}
CALLBACK_EVERY = dt.timedelta(days=1)  # one request per business a day: the ambassador has the task already
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def callback_due(
    now: dt.datetime,
    slot: str,
    zone: ZoneInfo,
    is_holiday: Callable[[dt.date], bool] = is_french_holiday,
) -> dt.datetime:
    """The start of the next chosen slot on a working day of `zone`, at least one hour from now (aware UTC)."""
    _, start, _ = SLOTS[slot]
    local_now = now.astimezone(zone)
    day = local_now.date()
    for _ in range(30):
        candidate = dt.datetime.combine(day, dt.time(start), zone)
        if day.weekday() < 5 and not is_holiday(day) and candidate >= local_now + dt.timedelta(hours=1):
            return candidate.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise ValueError("no working day in the next 30 days")  # cannot happen with French calendars


def assignee_of(context: Mapping[str, Any]) -> str:
    """Who calls back: the ambassador the planner named in the message's meta (or its context), else the shared
    adviser queue."""
    ambassador = context.get("ambassador") or {}
    ambassador_id = (context.get("meta") or {}).get("ambassador_id") or ambassador.get("id")
    return f"ambassador:{ambassador_id}" if ambassador_id not in (None, "") else "adviser"


def call_script(context: Mapping[str, Any], slot: str) -> str:
    """What the task tells the person who calls back."""
    name = (context.get("business") or {}).get("name") or "Cette entreprise"
    return (f"{name} demande un rappel {SLOTS[slot][0]}. Présentez-vous, demandez ce qui l'intéresse, "
            "proposez une rencontre.")


@dataclass(frozen=True)
class AmbassadorMail:
    """The e-mail telling an ambassador to call an owner back."""

    recipient: str
    subject: str
    body: str


def ambassador_mail(context: Mapping[str, Any], *, phone: str, slot: str, due_at: dt.datetime, note: str,
                    dashboard_url: str, zone: ZoneInfo) -> AmbassadorMail | None:
    """The e-mail to the ambassador of the message's `context` (else its sender's contact) saying that the owner
    asked to be called back on `phone`, from `due_at` (said in `zone`, the App's); None when neither has an
    address."""
    ambassador = context.get("ambassador") or {}
    to = ambassador.get("email") or (context.get("sender") or {}).get("email")
    if not to:
        return None
    business = context.get("business") or {}
    local = due_at.astimezone(zone)
    who = business.get("name") or "Une entreprise"
    metier = business.get("metier") or ""
    commune = business.get("commune") or ""
    lines = [
        f"Bonjour {ambassador.get('name') or ''},",
        "",
        f"{who}{f' ({metier}' + (f', {commune}' if commune else '') + ')' if metier else ''} "
        "demande un rappel.",
        f"Numéro : {phone}",
        f"Moment préféré : {SLOTS[slot][0]}, "
        f"à partir du {WEEKDAYS[local.weekday()]} {local:%d/%m} à {local:%H} h.",
    ]
    if note:
        lines.append(f"Son message : « {note} »")
    lines += ["", f"Votre liste d'appels : {dashboard_url}", "", "Merci pour votre aide.", "L'équipe Déclic"]
    return AmbassadorMail(to, f"À rappeler : {who}", "\n".join(lines) + "\n")


@dataclass(frozen=True)
class CallbackAsked:
    """What a request did: its call task (None when the business asked already within the day) and when the call is
    due."""

    task_id: int | None
    due_at: dt.datetime

    @property
    def again(self) -> bool:
        return self.task_id is None


def ask_callback(app: App, msg, *, phone: str, slot: str, note: str, sms: bool,
                 shown_phone: str | None = None) -> CallbackAsked:
    """Record the callback the owner asked for from the page of `msg`: the call task (created, or updated when
    asked again from the same message), the number (the business's when it had none), the call consent to the
    campaign's owner and, with `sms`, an SMS consent apart; and, in the same unit of work, the ambassador's e-mail
    (`ambassador_mail`, the number as the owner wrote it: `shown_phone`), once per task and day. `phone` is E.164,
    `slot` one of SLOTS."""
    with app.transaction() as unit:
        due = callback_due(unit.now, slot, unit.zone)
        if msg.business_id is not None and callback_asked_since(unit.conn, msg.business_id,
                                                                unit.now - CALLBACK_EVERY):
            return CallbackAsked(None, due)
        stored = request_callback(unit.conn, msg, phone=phone, slot=slot, due_at=due, note=note,
                                  assignee=assignee_of(msg.context or {}), script=call_script(msg.context or {}, slot),
                                  now=unit.now, sms=sms)
        mail = ambassador_mail(msg.context or {}, phone=shown_phone or phone, slot=slot, due_at=due, note=note,
                               dashboard_url=f"{app.settings.base_url.rstrip('/')}/tableau/appels", zone=unit.zone)
        if mail is not None:
            queue_notices(unit.conn, "callback_request", f"callback_request:{stored.task_id}:{unit.today}",
                          [mail.recipient], mail.subject, mail.body, unit.now, business_id=msg.business_id,
                          campaign_id=msg.campaign_id)
    return CallbackAsked(stored.task_id, due)
