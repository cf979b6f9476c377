"""The journey planner: pure. New trigger events and campaigns in, enrollments and planned messages out,
with the reason for every business left out.

It imports neither Prefect nor the store: `store.planning` gathers the inputs and applies the plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.campaign_spec import CampaignSpec
from orchestrator.windows import DEFAULT_WINDOW, is_french_holiday, next_slot

CONTACT_KIND = {"email": "email", "sms": "phone", "call": "phone", "letter": "postal"}


@dataclass(frozen=True, slots=True)
class BusinessView:
    """What the planner knows of a business."""

    id: int
    siret: str
    name: str | None
    metier: str
    family: str | None
    family_label: str
    commune_code: str | None
    commune_nom: str | None
    epci_code: str | None
    departement_code: str | None
    region_code: str | None
    postal_code: str | None
    state: str
    do_not_contact: bool
    email: str | None
    phone: str | None
    postal: str | None  # the address block, when known


@dataclass(frozen=True, slots=True)
class Candidate:
    """A new trigger event about a known business."""

    event_id: int
    type: str
    occurred_on: dt.date
    business: BusinessView


@dataclass(frozen=True, slots=True)
class CampaignRule:
    """An active campaign as stored: id, version and its validated spec."""

    id: int
    version: int
    spec: CampaignSpec


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    step: int
    channel: str
    template: str  # template set name; the family's file is resolved at render time
    recipient: str
    due_at: dt.datetime  # aware UTC
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedEnrollment:
    campaign_id: int
    campaign_version: int
    business_id: int
    event_id: int
    trigger_key: str
    trigger_type: str
    arm: str
    messages: tuple[PlannedMessage, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """A business a campaign did not contact, and why."""

    campaign_id: int | None
    event_id: int
    business_id: int
    reason: str  # not_matched, not_to_contact, closed, already_enrolled, no_channel, opted_out


@dataclass(slots=True)
class Plan:
    enrollments: list[PlannedEnrollment] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


def matches(spec: CampaignSpec, trigger_type: str, b: BusinessView) -> bool:
    """Does this trigger about this business fall inside the campaign's segment?"""
    if trigger_type not in spec.triggers:
        return False
    seg = spec.segment
    if seg.families and b.family not in seg.families:
        return False
    terr = spec.effective_territory()
    return (
        (b.commune_code in terr.communes) or (b.epci_code in terr.epci)
        or (b.departement_code in terr.departements) or (b.region_code in terr.regions)
    )


def recipient_for(channel: str, b: BusinessView) -> str | None:
    """The business's address on a channel, if known."""
    return {"email": b.email, "sms": b.phone, "call": b.phone, "letter": b.postal}.get(channel)


def message_context(spec: CampaignSpec, b: BusinessView, c: Candidate) -> dict[str, Any]:
    """The template context known at planning time (links are added at send time)."""
    contact = spec.contact.model_dump()
    return {
        "business": {"siret": b.siret, "name": b.name, "metier": b.metier, "family": b.family,
                     "family_label": b.family_label, "commune": b.commune_nom, "postal_code": b.postal_code},
        "ambassador": contact,
        "offers": [],
        "sender": spec.sender.model_dump(),
        "trigger": {"type": c.type, "occurred_on": c.occurred_on.isoformat()},
        "deadline": None,
        "campaign": {"name": spec.title or spec.name},
    }


def plan(
    candidates: Iterable[Candidate],
    campaigns: Iterable[CampaignRule],
    *,
    now: dt.datetime,
    enrolled: set[tuple[int, int, str]],
    suppressed: set[tuple[str, str]],
    is_holiday: Callable[[dt.date], bool] = is_french_holiday,
) -> Plan:
    """Enrol matching businesses and schedule their steps inside send windows.

    `enrolled` holds (campaign id, business id, trigger key) already stored; `suppressed` holds
    (kind, normalised address) opt-outs. `now` is aware.
    """
    out = Plan()
    campaigns = list(campaigns)
    enrolled = set(enrolled)
    today = now.date()
    for c in candidates:
        b = c.business
        for rule in campaigns:
            spec = rule.spec
            if (spec.starts_on and today < spec.starts_on) or (spec.ends_on and today > spec.ends_on):
                continue
            if not matches(spec, c.type, b):
                continue
            key = (rule.id, b.id, c.type)

            def skip(reason: str) -> None:
                out.skipped.append(Skip(rule.id, c.event_id, b.id, reason))

            if key in enrolled:
                skip("already_enrolled")
                continue
            if b.state != "active":
                skip("closed")
                continue
            if b.do_not_contact:
                skip("not_to_contact")
                continue
            messages = []
            due = now
            for index, step in enumerate(spec.steps):
                recipient = recipient_for(step.channel, b)
                if not recipient:
                    skip("no_channel")
                    break
                kind = CONTACT_KIND.get(step.channel, step.channel)
                if (kind, recipient.lower() if kind == "email" else recipient) in suppressed:
                    skip("opted_out")
                    break
                due = next_slot(due + step.delay_td, DEFAULT_WINDOW, "Europe/Paris", is_holiday)
                messages.append(PlannedMessage(index, step.channel, step.template, recipient, due,
                                               message_context(spec, b, c)))
            else:
                enrolled.add(key)
                out.enrollments.append(PlannedEnrollment(rule.id, rule.version, b.id, c.event_id, c.type,
                                                         c.type, "treatment", tuple(messages)))
    return out
