"""The declared fields of a partner event's `payload`, per event type (GDPR minimisation, issue 15 point 5).

A partner's free `payload` keeps only the fields declared here for the event's type; the rest is dropped at
intake (API, partner JSON feeds, partner files) and counted ("champs non déclarés retirés"), never refused.
Each field is either `DATA` (a code, a number, a date: what reports and templates read) or `TEXT` (free text a
person wrote: personal, purged first by the retention, at DECLIC_RETENTION_TEXT_DAYS, while the event keeps
its data fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The report's line for the dropped fields.
DROPPED_FIELDS = "champs non déclarés retirés"
DATA = "data"
TEXT = "text"  # free text: personal data

_NOTE = {"note": TEXT}  # an adviser's free words about the business
DECLARED: dict[str, dict[str, str]] = {
    "creation": {"funding_type": DATA, "program": DATA, "adviser_role": DATA, **_NOTE},
    "first_hire": {"contract_type": DATA, "hires": DATA, "program": DATA, **_NOTE},
    "takeover": {"takeover_mode": DATA, "program": DATA, **_NOTE},
    "critical_period": {"procedure": DATA, "program": DATA, **_NOTE},
    "consolidation": {"program": DATA, **_NOTE},
    "closure": {"closure_reason": DATA, **_NOTE},
    "activity_change": {"naf_before": DATA, "naf": DATA, **_NOTE},
    "deadline": {"deadline": DATA, "title": DATA, "deadline_date": DATA, "receive_date": DATA, "issue_date": DATA},
    "offer_enrolled": {"offer": DATA, "program": DATA, **_NOTE},
    "diagnostic_completed": {"score": DATA, "level": DATA, **_NOTE},
    "ambassador_met": {"ambassador_role": DATA, **_NOTE},
    "tool_adopted": {"category": DATA, "tool": DATA, **_NOTE},
}


@dataclass
class Dropped:
    """Undeclared payload fields dropped at intake, counted for the answer or the report."""

    fields: int = 0


def declared(event_type: str) -> dict[str, str]:
    """The declared fields of a type: {name: DATA or TEXT} (an unknown type declares none)."""
    return DECLARED.get(event_type, {})


def minimise(event_type: str, payload: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """(the payload with its declared fields only, how many fields were dropped)."""
    if not payload:
        return {}, 0
    fields = declared(event_type)
    kept = {k: v for k, v in payload.items() if k in fields}
    return kept, len(payload) - len(kept)


def without_free_text(event_type: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The payload's declared data fields only: free text (and anything undeclared, stored before) goes."""
    fields = declared(event_type)
    return {k: v for k, v in (payload or {}).items() if fields.get(k) == DATA}
