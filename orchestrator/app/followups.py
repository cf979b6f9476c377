"""Follow-ups at 30 and 90 days (issue 16, point 3), the application side: which follow-ups a dashboard user may see
and act on, and the outcome one records."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from orchestrator.app.bootstrap import App
from store import accounts
from store.followups import complete_followup, followup_clause


def scope_clause(conn: Connection, scope: accounts.Scope):
    """The follow-ups `scope` sees: an operator all, an ambassador its own, a collectivité those of its campaigns."""
    ids = None if scope.is_operator or scope.role == "ambassador" else accounts.visible_campaign_ids(conn, scope)
    return followup_clause(scope.role, scope.assignee, ids)


def complete(app: App, followup_id: int, scope: accounts.Scope, *, outcome: str, category: str | None,
             note: str) -> bool:
    """Record a follow-up's outcome (commencé à utiliser, and which tool / en cours / abandonné) by the user of
    `scope`; False when the scope does not see it or it is done already, ValueError for an unknown outcome."""
    with app.transaction() as unit:
        return complete_followup(unit.conn, followup_id, scope_clause(unit.conn, scope), outcome=outcome,
                                 category=category, note=note, by=scope.name, now=unit.now)
