"""Schema upgrades keep the data: a store at the first revision, with rows, upgrades to the newest."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import store.models  # noqa: F401  (the tables the migrations must build)
from store.db import dispose_engines
from store.migrate import alembic_config, upgrade
from tests.conftest import POSTGRES_URL
from tests.utils.schemas import scratch_schema

NOW = dt.datetime(2026, 11, 27, 8, 0)


def _fill_first_revision(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO business (id, siret, siren, state, do_not_contact, phone_consent, created_at, updated_at) "
            "VALUES (1, '73282932000074', '732829320', 'active', false, false, :t, :t)"), {"t": NOW})
        conn.execute(text(
            "INSERT INTO campaign (id, name, owner, status, version, spec, created_at, updated_at) "
            "VALUES (1, 'c', 'o', 'active', 1, '{}', :t, :t)"), {"t": NOW})
        conn.execute(text(
            "INSERT INTO enrollment (id, campaign_id, business_id, trigger_key, trigger_type, arm, campaign_version,"
            " enrolled_at) VALUES (1, 1, 1, 'creation', 'creation', 'treatment', 1, :t)"), {"t": NOW})
        conn.execute(text(
            "INSERT INTO message (id, campaign_id, enrollment_id, business_id, step, channel, template, due_at,"
            " status, attempts, context, created_at) VALUES (1, 1, 1, 1, 0, 'email', 'creation', :t, 'sent', 1,"
            " '{}', :t)"), {"t": NOW})
    engine.dispose()


def _check(url: str) -> None:
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM message")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM enrollment")).scalar() == 1
        heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        # The migrations build exactly the models' tables, columns and indexes (what the tests' stores are made of).
        drift = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert len(heads) == 1  # one linear chain
    assert drift == []
    assert "calltask" in inspect(engine).get_table_names()
    engine.dispose()
    dispose_engines()


def test_sqlite_upgrade_from_first_revision_keeps_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _fill_first_revision(url)
    _check(url)


@pytest.mark.postgres
def test_postgres_upgrade_from_first_revision_keeps_rows():
    with scratch_schema(POSTGRES_URL, "m") as url:
        _fill_first_revision(url)
        _check(url)
