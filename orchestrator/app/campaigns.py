"""Campaign writes, whatever the door (the dashboard's form today): a spec (validated by `load_spec`, as `declic
campaigns apply` validates a YAML file) is saved as a new version, and the save is written in the audit trail with
who made it; a campaign is paused, resumed or ended; its figures are recomputed on demand."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.app.bootstrap import App
from orchestrator.core.campaign_spec import CampaignSpec
from store import audit
from store.accounts import Scope
from store.admin import CampaignNameTaken, apply_campaign_in, set_campaign_status
from store.report import refresh_rollup

__all__ = ["CampaignNameTaken", "Saved", "refresh_figures", "save", "set_status"]


@dataclass(frozen=True)
class Saved:
    """A saved campaign: its id, its version, and whether it was created, updated or left unchanged."""

    campaign_id: int
    version: int
    what: str  # created | updated | unchanged


def save(app: App, spec: CampaignSpec, *, by: Scope, create_only: bool, campaign_id: int | None = None) -> Saved:
    """Create the campaign (`create_only`: a name already taken raises CampaignNameTaken) or update campaign
    `campaign_id`, and write the save in the audit trail, in one unit of work (nothing when the spec did not
    change)."""
    with app.transaction() as unit:
        campaign_id, version, what = apply_campaign_in(unit.conn, spec, now=unit.now, create_only=create_only,
                                                       campaign_id=campaign_id)
        if what != "unchanged":
            audit.record(unit.conn, actor=audit.user_email(unit.conn, by.user_id), role=by.role,
                         territory=by.territory, action="campaign_save", target=f"campaign:{campaign_id}",
                         detail={"version": version, "what": what}, at=unit.now)
    return Saved(campaign_id, version, what)


def set_status(app: App, name: str, status: str) -> bool:
    """Pause, resume (active) or end the campaign `name`; False when there is none."""
    return set_campaign_status(app.engine, name, status, now=app.now())


def refresh_figures(app: App, campaign_ids: list[int]) -> int:
    """Recompute these campaigns' figures now instead of waiting for the night; returns the rows written."""
    return refresh_rollup(app.engine, campaign_ids, now=app.now())
