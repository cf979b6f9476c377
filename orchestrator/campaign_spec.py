"""A campaign as a collectivité writes it (YAML), validated: who, when, what, from whom.

The dashboard and `declic campaigns apply FILE` produce the same spec and go through the same checks.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triggers.model import TRIGGER_TYPES

CHANNELS = ("email", "sms", "letter", "call", "webhook")
_DELAY = re.compile(r"^\s*(\d+)\s*(m|h|d|j)\s*$")


def parse_delay(value: str | int) -> dt.timedelta:
    """`"2d"`, `"3j"`, `"4h"`, `"30m"` or a number of days."""
    if isinstance(value, int):
        return dt.timedelta(days=value)
    match = _DELAY.match(str(value))
    if not match:
        raise ValueError(f"délai illisible: {value!r} (exemples: 0d, 2d, 4h, 30m)")
    n, unit = int(match[1]), match[2]
    return {"m": dt.timedelta(minutes=n), "h": dt.timedelta(hours=n)}.get(unit, dt.timedelta(days=n))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TerritorySpec(Strict):
    """Territory codes by explicit level (région and département codes overlap: "11" is both)."""

    communes: list[str] = Field(default_factory=list)
    epci: list[str] = Field(default_factory=list)
    departements: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.communes or self.epci or self.departements or self.regions)

    def unknown_codes(self) -> list[str]:
        """Codes that name no known territory, as "level:code"."""
        from segments.territory import validate_codes

        out = []
        for level, codes in (("commune", self.communes), ("epci", self.epci),
                             ("departement", self.departements), ("region", self.regions)):
            out += [f"{level}:{c}" for c in validate_codes(level, codes)]
        return out

    def communes_covered(self) -> set[str]:
        """Every commune code inside this territory."""
        from segments.territory import communes_of

        out: set[str] = set()
        for level, codes in (("commune", self.communes), ("epci", self.epci),
                             ("departement", self.departements), ("region", self.regions)):
            for code in codes:
                out |= communes_of(level, code)
        return out


class Contact(Strict):
    """A person to call or write to (the campaign's fallback when no ambassador fits)."""

    name: str
    metier: str | None = None
    phone: str | None = None
    email: str | None = None
    commune: str | None = None


class Sender(Strict):
    """Who speaks: the collectivité or network, clearly identified in every message."""

    name: str
    address: str
    email: str | None = None
    phone: str | None = None


class Owner(Strict):
    """The collectivité that owns the campaign, and its territory."""

    name: str
    territory: TerritorySpec


class SegmentSpec(Strict):
    """Who: métier families and territory (the full segment language extends this)."""

    families: list[str] = Field(default_factory=list)
    territory: TerritorySpec = Field(default_factory=TerritorySpec)

    @field_validator("families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        from segments.taxonomy import families

        unknown = [f for f in value if f not in families()]
        if unknown:
            raise ValueError(f"familles de métiers inconnues: {', '.join(unknown)}")
        return value


class Step(Strict):
    """One message of the journey: channel, delay after the trigger (or the previous step), template."""

    channel: str = "email"
    delay: str | int = "0d"
    template: str = Field(description="trigger template set, e.g. 'creation'; resolved per métier family")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"canal inconnu: {value} (connus: {', '.join(CHANNELS)})")
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | int) -> str | int:
        parse_delay(value)
        return value

    @property
    def delay_td(self) -> dt.timedelta:
        return parse_delay(self.delay)


class CampaignSpec(Strict):
    """A whole campaign."""

    name: str = Field(min_length=3, max_length=120, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str | None = None
    owner: Owner
    sender: Sender
    contact: Contact
    triggers: list[str] = Field(min_length=1)
    segment: SegmentSpec = Field(default_factory=SegmentSpec)
    steps: list[Step] = Field(min_length=1)
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None

    @field_validator("triggers")
    @classmethod
    def _triggers(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TRIGGER_TYPES]
        if unknown:
            raise ValueError(f"déclencheurs inconnus: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _inside_owner_territory(self) -> CampaignSpec:
        unknown = self.owner.territory.unknown_codes() + self.segment.territory.unknown_codes()
        if unknown:
            raise ValueError(f"codes de territoire inconnus: {', '.join(unknown)}")
        if self.owner.territory.is_empty():
            raise ValueError("le territoire du porteur de la campagne est vide")
        if not self.segment.territory.is_empty():
            outside = self.segment.territory.communes_covered() - self.owner.territory.communes_covered()
            if outside:
                sample = ", ".join(sorted(outside)[:5])
                raise ValueError(f"le segment sort du territoire du porteur ({len(outside)} communes, ex. {sample})")
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("la date de fin précède la date de début")
        return self

    def effective_territory(self) -> TerritorySpec:
        """The segment's territory, or the owner's when the segment names none."""
        return self.owner.territory if self.segment.territory.is_empty() else self.segment.territory


def load_spec(source: str | Path | dict[str, Any]) -> CampaignSpec:
    """Read and validate a campaign from a YAML/JSON file path, YAML text, or a dict."""
    if isinstance(source, dict):
        data = source
    else:
        is_text = isinstance(source, str) and "\n" in source
        text = source if is_text else Path(source).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("une campagne est un document YAML avec des clés (name, owner, steps, ...)")
    return CampaignSpec.model_validate(data)
