"""The store-backed channels take the composition root's engine instead of opening their own."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine

import integrations.call_task
import integrations.email_smtp
import integrations.letter_pdf
import integrations.sms_http
import integrations.webhook  # noqa: F401  (each module registers its channel)
import store.db
from integrations.base import factory_for
from orchestrator.app.settings import Settings

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def no_own_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str):
        raise AssertionError(f"a channel opened its own engine on {url}")

    monkeypatch.setattr(store.db, "get_engine", refuse)


def test_letters_and_calls_use_the_engine_they_are_given(tmp_path, no_own_engine) -> None:
    engine = create_engine("sqlite://")
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    letter = factory_for("letter")(settings, clock=lambda: NOW, engine=engine)
    call = factory_for("call")(settings, clock=lambda: NOW, engine=engine)
    assert letter.engine is engine and call.engine is engine


def test_every_channel_accepts_the_engine_keyword(tmp_path) -> None:
    engine = create_engine("sqlite://")
    settings = Settings(home=tmp_path, webhook_url="http://127.0.0.1:9", webhook_secret="s" * 32)
    for name in ("email", "sms", "letter", "call", "webhook"):
        channel = factory_for(name)(settings, clock=lambda: NOW, engine=engine)
        channel.close()


def test_a_channel_built_alone_still_finds_its_store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECLIC_DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path)
    call = factory_for("call")(settings, clock=lambda: NOW)
    assert call.engine is store.db.get_engine(settings.resolved_database_url)
    assert factory_for("letter")(SimpleNamespace(home=tmp_path, timezone="Europe/Paris")).engine is None
