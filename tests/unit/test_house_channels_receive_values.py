"""Channels receive values, not tables: no channel is given the store, none opens it (issue 17, point 3)."""

from __future__ import annotations

import datetime as dt
import inspect

import store.db
from integrations.base import factory_for, registered
from orchestrator.app.bootstrap import _import_channels
from orchestrator.app.settings import Settings

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def test_no_channel_factory_takes_the_store(tmp_path, monkeypatch) -> None:
    def refuse(url: str):
        raise AssertionError(f"a channel opened an engine on {url}")

    monkeypatch.setattr(store.db, "get_engine", refuse)
    _import_channels()
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        webhook_url="http://127.0.0.1:9", webhook_secret="s" * 32)
    assert {"email", "sms", "letter", "call", "webhook", "relay"} <= set(registered())
    for name in registered():
        factory = factory_for(name)
        assert "engine" not in inspect.signature(factory).parameters, name
        channel = factory(settings, clock=lambda: NOW)
        assert not hasattr(channel, "engine"), name
        channel.close()
