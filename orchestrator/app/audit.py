"""The audit trail of personal data, the dashboard's side: each view of a business and each export is written with
who made it (their e-mail, role and territory), at the App's clock. Targets name rows by id, never a contact."""

from __future__ import annotations

from typing import Any

from orchestrator.app.bootstrap import App
from store import audit
from store.accounts import Scope


def record_access(app: App, scope: Scope, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append: the user of `scope` did `action` (view_business, export_csv, export_xlsx...) on `target`."""
    with app.transaction() as unit:
        audit.record(unit.conn, actor=audit.user_email(unit.conn, scope.user_id), role=scope.role,
                     territory=scope.territory, action=action, target=target, detail=detail, at=unit.now)
