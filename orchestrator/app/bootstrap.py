"""The one composition root: settings -> store engine, channels, template library, clock and zone.

The CLI, the Prefect flows and the web app all receive the `App` built by `bootstrap()`; `App.transaction()` is
the unit of work: one transaction and the moment it runs at (the clock read once), in the App's zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine

from integrations._settings import UnconfiguredChannel
from integrations.base import Channel, factory_for, registered
from orchestrator.app.settings import Settings, get_settings
from store.db import get_engine
from templates.render import TemplateLibrary, library

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """Now, aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Unit:
    """One unit of work: its connection (inside a transaction) and the moment it runs at, in the App's zone."""

    conn: Connection
    now: dt.datetime
    zone: ZoneInfo

    @property
    def today(self) -> dt.date:
        """The local date of `now` (a day as the people of the zone count it)."""
        return self.now.astimezone(self.zone).date()


@dataclass
class App:
    """Everything a flow, a command or a web route needs, built once."""

    settings: Settings
    engine: Engine
    templates: TemplateLibrary
    clock: Clock = system_clock
    channels: dict[str, Channel] = field(default_factory=dict)
    # Where local dates and hours are counted; None: `Settings.timezone`.
    zone: ZoneInfo = None  # type: ignore[assignment]  # filled in __post_init__

    def __post_init__(self) -> None:
        if self.zone is None:
            self.zone = ZoneInfo(self.settings.timezone)

    def now(self) -> dt.datetime:
        """The clock's reading (aware UTC with the system clock)."""
        return self.clock()

    def today(self) -> dt.date:
        """Today's date in the App's zone."""
        return self.clock().astimezone(self.zone).date()

    @contextmanager
    def transaction(self) -> Iterator[Unit]:
        """The unit of work: a connection in one transaction (committed on leaving, rolled back on an error)
        and the clock read once for everything the unit writes."""
        with self.engine.begin() as conn:
            yield Unit(conn, self.clock(), self.zone)

    def channel(self, name: str) -> Channel:
        """The channel `name`, built on first use from the settings."""
        if name not in self.channels:
            _import_channels()
            self.channels[name] = factory_for(name)(self.settings, clock=self.clock)
        return self.channels[name]

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()


def _import_channels() -> None:
    # Each channel module registers itself when imported. On the first channel built, not with this module: the
    # PDF libraries of letters cost about 1 s of every command's start-up, requests 0.2 s (measured).
    import integrations.call_task  # noqa: F401
    import integrations.email_smtp  # noqa: F401
    import integrations.letter_pdf  # noqa: F401
    import integrations.relay  # noqa: F401
    import integrations.sms_http  # noqa: F401
    import integrations.webhook  # noqa: F401


def unconfigured_channels(settings: Settings) -> dict[str, str]:
    """Each channel whose settings are missing -> what is missing (in the channel's words), built as a dispatch
    builds it (`integrations._settings.UnconfiguredChannel` stands in for it): the planner treats these channels
    as unavailable (the step's fallback applies) and `declic status` names them."""
    _import_channels()
    missing: dict[str, str] = {}
    for name in registered():
        try:
            channel = factory_for(name)(settings, clock=None)
        except (TypeError, ValueError) as exc:
            missing[name] = str(exc)
            continue
        if isinstance(channel, UnconfiguredChannel):
            missing[name] = channel.reason
        with suppress(Exception):
            channel.close()
    return missing


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> App:
    """Build the app from settings (environment by default)."""
    settings = settings or get_settings()
    return App(settings=settings, engine=get_engine(settings.resolved_database_url), templates=library(),
               clock=clock or system_clock)
