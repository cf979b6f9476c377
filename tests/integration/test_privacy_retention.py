"""Retention: `declic privacy purge --dry-run` and the nightly flow privacy-retention call the same service and agree;
the clock moves: message texts and free notes go after a year, contacts three years after the person's last contact."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app import privacy
from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from store.models import Business, Interaction, Message, TriggerEvent
from tests.utils.privacy import EMAIL, NOTE, NOW, build_business


def at(settings, moment):
    return bootstrap(settings, clock=lambda: moment)


def test_purge_dry_run_and_flow_agree_as_the_clock_moves(prefect_harness, env_settings, engine, tmp_path):
    from orchestrator.prefect.flows import privacy_retention_flow, run_once

    settings = env_settings
    build_business(settings, engine, tmp_path)
    assert privacy.purge(at(settings, NOW + dt.timedelta(days=300)), dry_run=True) == {}

    year = NOW + dt.timedelta(days=400)
    dry = privacy.purge(at(settings, year), dry_run=True)
    assert set(dry) == {"message", "interaction", "triggerevent"}
    assert dry["message"] == {"Département d'Ille-et-Vilaine": 1}
    result = CliRunner().invoke(cli, ["privacy", "purge", "--dry-run", "--now", year.isoformat()])
    assert result.exit_code == 0 and "simulation" in result.output and "textes des messages" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(Business.__table__.c.email)).scalar_one() == EMAIL  # a dry run changes nothing

    assert run_once(privacy_retention_flow, now=year.isoformat()) == dry
    with engine.connect() as conn:
        assert NOTE not in str(conn.execute(select(Interaction.__table__.c.data)).all())
        assert all(not p for p in conn.execute(select(TriggerEvent.__table__.c.payload)
                                               .where(TriggerEvent.__table__.c.partner_id.is_not(None))).scalars())
        sent = conn.execute(select(Message.__table__).where(Message.__table__.c.status == "sent")).one()
        assert sent.recipient is None and sent.context.get("erased")
        assert conn.execute(select(Business.__table__.c.email)).scalar_one() == EMAIL  # contacts stay 3 years
    assert privacy.purge(at(settings, year), dry_run=True) == {}

    later = NOW + dt.timedelta(days=3 * 365 + 10)  # three years after the callback request, the last contact
    dry = privacy.purge(at(settings, later), dry_run=True)
    assert dry["business"] == {"Département d'Ille-et-Vilaine": 1}
    assert run_once(privacy_retention_flow, now=later.isoformat()) == dry
    with engine.connect() as conn:
        b = conn.execute(select(Business.__table__)).one()
    assert b.email is None and b.phone is None and not b.phone_consent
