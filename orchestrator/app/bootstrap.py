"""The one composition root: settings -> store engine, channels, template library, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from integrations.base import Channel, factory_for
from orchestrator.app.settings import Settings, get_settings
from store.db import get_engine
from templates.render import TemplateLibrary, library

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """Now, aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class App:
    """Everything a flow or a command needs, built once."""

    settings: Settings
    engine: Engine
    templates: TemplateLibrary
    clock: Clock = system_clock
    channels: dict[str, Channel] = field(default_factory=dict)

    def channel(self, name: str) -> Channel:
        """The channel `name`, built on first use from the settings."""
        if name not in self.channels:
            import integrations.email_smtp  # noqa: F401  (registers "email")

            _import_channels()
            self.channels[name] = factory_for(name)(self.settings, clock=self.clock, engine=self.engine)
        return self.channels[name]

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()


def _import_channels() -> None:
    # Each channel module registers itself; import those that exist in this build.
    import importlib

    for module in ("sms_http", "letter_pdf", "call_task", "webhook", "relay"):
        try:
            importlib.import_module(f"integrations.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"integrations.{module}":
                raise


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> App:
    """Build the app from settings (environment by default)."""
    settings = settings or get_settings()
    return App(settings=settings, engine=get_engine(settings.resolved_database_url), templates=library(),
               clock=clock or system_clock)
