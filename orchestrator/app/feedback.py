"""What providers tell back through the hooks, recorded: SMS replies (a STOP opts the number out everywhere),
delivery receipts, bounce reports (a hard bounce opts the address out). Each call is one unit of work; the readers
of each format are the channels' (`integrations.sms_http`, `integrations.email_bounce`)."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.app.bootstrap import App
from store import feedback


def sms_replies(app: App, replies: Iterable, source: str = "sms_reply") -> dict[str, int]:
    """Record replies to our SMS; the counts by what each became."""
    with app.transaction() as unit:
        return dict(feedback.record_sms_replies(unit.conn, replies, source=source, now=unit.now))


def sms_receipts(app: App, receipts: Iterable, source: str = "sms_receipt") -> dict[str, int]:
    """Record delivery receipts of our SMS; the counts by what each became."""
    with app.transaction() as unit:
        return dict(feedback.record_sms_deliveries(unit.conn, receipts, source=source, now=unit.now))


def bounces(app: App, reports: Iterable, source: str = "bounce_report") -> dict[str, int]:
    """Record bounce reports of our e-mails; the counts by what each became."""
    with app.transaction() as unit:
        return dict(feedback.record_bounces(unit.conn, reports, source=source, now=unit.now))
