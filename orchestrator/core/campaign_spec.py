"""A campaign as a collectivité writes it (YAML), validated: who, when, what, from whom.

The dashboard and `declic campaigns apply FILE` produce the same spec and go through the same checks.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.core.durations import ambiguous_m, parse_duration
from orchestrator.core.schedule import check_rule
from orchestrator.core.windows import NIGHT_END, NIGHT_START
from segments.language import Segment, TerritoryFilter, segment_warnings
from segments.taxonomy import families
from segments.territory import METROPOLITAN_TIMEZONE, commune, departement_timezone
from triggers.model import TRIGGER_TYPES

# "relay": the business's intermediary (accountant, CMA/CCI or bank adviser) hears of it in a digest (issue 16).
CHANNELS = ("email", "sms", "letter", "call", "webhook", "relay")
# The longest durations a campaign may hold: beyond them a value is a typo, and adding it to a date would
# overflow while planning (a step delay of "999999999d" once stopped planning for every campaign).
MAX_STEP_DELAY = dt.timedelta(days=730)  # a step waits at most two years after the previous one
MAX_DEFER = dt.timedelta(days=365)  # a capped message waits at most a year
MAX_MIN_INTERVAL = dt.timedelta(days=730)  # two occurrences of a schedule reach a business at most 2 years apart
SCHEDULE_YEARS = (2000, 2100)  # a schedule starts within these years


@lru_cache(maxsize=1024)
def parse_delay(value: str | int) -> dt.timedelta:
    """`"2d"`, `"4h"`, `"30min"` (`orchestrator.core.durations`) or a number of days, at most `MAX_STEP_DELAY`."""
    return bounded_delay(value, "délai", MAX_STEP_DELAY)


def bounded_delay(value: str | int, what: str, limit: dt.timedelta) -> dt.timedelta:
    """A delay, wait or interval: the duration `value` if it is readable, not negative and at most `limit`; else a
    French ValueError naming `what` (the field, in words). The old unit `m` means minutes here."""
    return parse_duration(value, what, limit, old_m="min")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The owner's territory and a segment's share one vocabulary (explicit levels, several codes each).
TerritorySpec = TerritoryFilter


class Contact(Strict):
    """A person to call or write to (the campaign's fallback when no ambassador fits)."""
    name: str
    metier: str | None = None
    phone: str | None = None
    email: str | None = None
    commune: str | None = None


class Logo(Strict):
    """The sender's logo at the top of its e-mails: an https image, and the words read when images are off."""
    url: str = Field(pattern=r"^https://\S+$", max_length=500)
    alt: str = Field(min_length=1, max_length=120)


_MAILBOX = r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"


class Sender(Strict):
    """Who speaks: the collectivité or network, clearly identified in every message.

    E-mails leave as "<name> <mail_from>" (without `mail_from`: the owner's name as a mailbox of the sending
    domain, DECLIC_MAIL_DOMAIN), answers go to `reply_to` (else `email`); see `integrations.email_smtp`.
    """
    name: str
    address: str
    email: str | None = None
    phone: str | None = None
    logo: Logo | None = None
    mail_from: str | None = Field(default=None, pattern=_MAILBOX, max_length=254)
    reply_to: str | None = Field(default=None, pattern=_MAILBOX, max_length=254)


class Owner(Strict):
    """The collectivité that owns the campaign, and its territory."""
    name: str
    territory: TerritorySpec


class SegmentSpec(Segment):
    """Who: the full segment language (`segments.language`); `families` and `territory` as before."""


CONDITIONS = ("no_click", "clicked", "no_conversion")
# Channel fallback order when a business lacks the step's channel (DOMAIN: e-mail, then SMS, letter, call task).
FALLBACK_CHAIN = ("email", "sms", "letter", "call")


class Step(Strict):
    """One message of the journey: channel, delay after the trigger (first step) or the previous step, template.

    `if` makes the step conditional on what the previous message got (`no_click`, `clicked`,
    `no_conversion`), evaluated when the step falls due. `fallback` lists the channels tried when the
    business lacks this one (default: the rest of e-mail -> SMS -> letter -> call; `[]` for none).
    """
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    channel: str = "email"
    delay: str | int = "0d"
    template: str = Field(description="trigger template set, e.g. 'creation'; resolved per métier family")
    condition: str | None = Field(default=None, alias="if")
    fallback: list[str] | None = None

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"canal inconnu: {value} (connus: {', '.join(CHANNELS)})")
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: list[str] | None) -> list[str] | None:
        unknown = [c for c in value or [] if c not in CHANNELS]
        if unknown:
            raise ValueError(f"canaux de repli inconnus: {', '.join(unknown)}")
        return value

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None and value not in CONDITIONS:
            raise ValueError(f"condition inconnue: {value} (connues: {', '.join(CONDITIONS)})")
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | int) -> str | int:
        bounded_delay(value, "délai de l'étape (delay)", MAX_STEP_DELAY)
        return value

    @property
    def delay_td(self) -> dt.timedelta:
        return parse_delay(self.delay)

    def channels(self) -> list[str]:
        """This step's channel then its fallbacks, in order."""
        if self.fallback is not None:
            rest = self.fallback
        elif self.channel == "relay":  # no intermediary: the business is reached directly, like any step
            rest = list(FALLBACK_CHAIN)
        elif self.channel in FALLBACK_CHAIN:
            rest = list(FALLBACK_CHAIN[FALLBACK_CHAIN.index(self.channel) + 1:])
        else:
            rest = []
        return [self.channel] + [c for c in rest if c != self.channel]


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Timing(Strict):
    """When messages may leave: weekends and public holidays are off unless said; windows by family override
    the defaults of `orchestrator.core.windows` (as "HH:MM" pairs, never at night)."""
    weekends: bool = False
    holidays: bool = False
    windows: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:

        unknown = [f for f in value if f not in families() and f != "default"]
        if unknown:
            raise ValueError(f"familles de métiers inconnues dans les créneaux: {', '.join(unknown)}")
        for family, ranges in value.items():
            for start, end in ranges:
                if not (_HHMM.match(start) and _HHMM.match(end)) or start >= end:
                    raise ValueError(f"créneau illisible pour {family}: {start}-{end} (format HH:MM-HH:MM)")
                if start < NIGHT_END.strftime("%H:%M") or end > NIGHT_START.strftime("%H:%M"):
                    raise ValueError(f"créneau de nuit refusé pour {family}: {start}-{end} "
                                     f"(jamais avant {NIGHT_END:%H:%M} ni après {NIGHT_START:%H:%M})")
        return value


class Cap(Strict):
    """At most `messages` per business in any `days` days."""
    messages: int = Field(ge=1)
    days: int = Field(ge=1, le=365)


class Pressure(Strict):
    """This campaign's own caps (the global caps always apply too) and how long a capped message may wait."""
    caps: list[Cap] = Field(default_factory=list)
    max_defer: str | int = "14d"

    @field_validator("max_defer")
    @classmethod
    def _defer(cls, value: str | int) -> str | int:
        bounded_delay(value, "attente maximale d'un message (max_defer)", MAX_DEFER)
        return value


class Variant(Strict):
    """An A/B template variant (`<family>.<name>.j2`) and its share of the treatment arm."""
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,19}$")
    weight: int = Field(default=1, ge=1)


class Schedule(Strict):
    """A dated or recurring campaign: `start` in local time, an optional RFC 5545 rule, the campaign's own
    minimum interval between two contacts of one business."""
    start: dt.datetime
    rrule: str | None = None
    timezone: str | None = None
    min_interval: str | int = "30d"
    # Spread a large occurrence over hours (messages per hour) so it never floods a channel or the caps.
    rate_per_hour: int | None = Field(default=None, ge=1)

    @field_validator("rrule")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        if value is None:
            return value

        check_rule(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"fuseau horaire inconnu: {value}") from exc
        return value

    @field_validator("min_interval")
    @classmethod
    def _interval(cls, value: str | int) -> str | int:
        bounded_delay(value, "intervalle minimal entre deux contacts (min_interval)", MAX_MIN_INTERVAL)
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: dt.datetime) -> dt.datetime:
        first, last = SCHEDULE_YEARS
        if not first <= value.year <= last:
            raise ValueError(f"début du calendrier (start) : entre {first} et {last}, reçu {value:%Y-%m-%d}")
        return value


# "Ce n'est pas pour moi" (issue 16): the fixed list of reasons an owner picks on the landing page, in the words they
# read, and what each can do. A campaign maps a reason to an action in its `not_for_me` section; a reason it leaves
# out takes its default.
NOT_FOR_ME_REASONS = {
    "pas_le_moment": "Ce n'est pas le moment pour moi",
    "trop_cher": "J'ai peur que ça coûte cher",
    "pas_utile": "Ce n'est pas utile pour mon métier",
    "par_ou_commencer": "Je ne sais pas par où commencer",
    "transmettre": "Je vais transmettre ou arrêter mon entreprise",
    "deja_equipe": "Je suis déjà bien équipé(e)",
    "autre": "Autre raison",
}
NOT_FOR_ME_ACTIONS = {
    "pause": "pause de 3, 6 ou 12 mois (au choix du dirigeant), puis un seul message doux",
    "free_offers": "seulement des offres gratuites pour cette entreprise",
    "testimony": "le message suivant est le témoignage d'un pair du même métier",
    "ambassador_call": "un appel de l'ambassadeur ou du conseiller",
    "takeover": "le parcours de transmission (reprise)",
    "end_and_ask": "fin de la campagne pour elle, et une question : quel outil utilisez-vous ?",
    "record": "la réponse est gardée, rien d'autre ne change",
}
DEFAULT_NOT_FOR_ME = {
    "pas_le_moment": "pause", "trop_cher": "free_offers", "pas_utile": "testimony",
    "par_ou_commencer": "ambassador_call", "transmettre": "takeover", "deja_equipe": "end_and_ask",
    "autre": "record",
}
PAUSE_MONTHS = (3, 6, 12)


def not_for_me_action(spec: CampaignSpec | None, reason: str) -> str:
    """What a reason does in this campaign: its `not_for_me` entry, else the default (no spec: the default)."""
    chosen = (spec.not_for_me if spec is not None else {}).get(reason)
    return chosen or DEFAULT_NOT_FOR_ME.get(reason, "record")


class CampaignSpec(Strict):
    """A whole campaign: owner, voice, who (segment), when (triggers and/or schedule, timing), what (steps),
    how much (pressure), and how its effect is measured (holdout, variants)."""
    name: str = Field(min_length=3, max_length=120, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str | None = None
    owner: Owner
    sender: Sender
    contact: Contact
    triggers: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    segment: SegmentSpec = Field(default_factory=SegmentSpec)
    steps: list[Step] = Field(min_length=1)
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    timing: Timing = Field(default_factory=Timing)
    pressure: Pressure = Field(default_factory=Pressure)
    holdout: float = Field(default=0, ge=0, le=50, description="percent of enrolled businesses kept as control")
    variants: list[Variant] = Field(default_factory=list)
    # Arbitration between campaigns that reach one business for one moment: the highest explicit priority
    # wins, else the most local owner, else the oldest campaign (`orchestrator.core.planner.arbitration_key`).
    priority: int | None = Field(default=None, ge=0, le=1000)
    # Bodies that co-sign the campaign (a Département and an EPCI running it together): every message and the
    # landing page name them all; each sees the campaign within its own territory.
    co_owners: list[Owner] = Field(default_factory=list, max_length=5)
    # Where a person writes to use their rights on their data (access, erasure, objection): shown in the privacy
    # notice of the landing page. Without it, the sender's e-mail.
    privacy_contact: str | None = Field(default=None, pattern=_MAILBOX, max_length=254)
    # The legal basis of its SMS (DOMAIN: L34-5 CPCE): "consent" (default), an SMS leaves only to a number whose
    # person gave an SMS consent to this owner; "legitimate_interest", B2B prospecting about the person's trade,
    # with STOP in every SMS, declared by the owner (records of processing, art. 30).
    sms_legal_basis: Literal["consent", "legitimate_interest"] = "consent"
    # What each "Ce n'est pas pour moi" reason does (reason -> action, `NOT_FOR_ME_ACTIONS`); absent: the defaults.
    not_for_me: dict[str, str] = Field(default_factory=dict)
    # Adoption measured, not clicks (issue 16): `measurement_window` days after its enrolment, a random share
    # (`control_diagnostic`, percent) of the control group is offered the self-diagnostic, the only message a
    # control business ever gets; the report compares the diagnostics of both arms.
    measurement_window: int = Field(default=120, ge=30, le=730)
    control_diagnostic: float = Field(default=30, ge=0, le=100)

    @field_validator("not_for_me")
    @classmethod
    def _not_for_me(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [r for r in value if r not in NOT_FOR_ME_REASONS]
        if unknown:
            raise ValueError(f"raisons « pas pour moi » inconnues: {', '.join(unknown)} "
                             f"(connues: {', '.join(NOT_FOR_ME_REASONS)})")
        bad = [a for a in value.values() if a not in NOT_FOR_ME_ACTIONS]
        if bad:
            raise ValueError(f"actions « pas pour moi » inconnues: {', '.join(bad)} "
                             f"(connues: {', '.join(NOT_FOR_ME_ACTIONS)})")
        return value

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
        for co in self.co_owners:
            unknown = co.territory.unknown_codes()
            if unknown:
                raise ValueError(f"codes de territoire inconnus (co-porteur {co.name}): {', '.join(unknown)}")
            if co.territory.is_empty():
                raise ValueError(f"le territoire du co-porteur {co.name} est vide")
        if not self.segment.territory.is_empty():
            outside = self.segment.territory.communes_covered() - self.signed_territory_communes()
            if outside:
                sample = ", ".join(sorted(outside)[:5])
                raise ValueError(f"le segment sort du territoire du porteur ({len(outside)} communes, ex. {sample})")
        if not self.triggers and self.schedule is None:
            raise ValueError("une campagne a des déclencheurs (triggers), un calendrier (schedule), ou les deux")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("deux variantes portent le même nom")
        if self.steps[0].condition is not None:
            raise ValueError("la première étape ne peut pas être conditionnelle (rien ne la précède)")
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("la date de fin précède la date de début")
        return self

    def timezone(self) -> str:
        """The owner's time zone: the schedule's, else that of the owner's first département, else the metropolitan
        one."""
        if self.schedule and self.schedule.timezone:
            return self.schedule.timezone

        terr = self.owner.territory
        deps = list(terr.departements)
        deps += [info.departement for info in map(commune, terr.communes) if info]
        try:
            return departement_timezone(deps[0]) if deps else METROPOLITAN_TIMEZONE
        except ValueError:
            return METROPOLITAN_TIMEZONE

    def owners(self) -> list[Owner]:
        """The owner then its co-owners."""
        return [self.owner, *self.co_owners]

    def signed_by(self) -> str:
        """Who runs the campaign, in words: "Rennes Métropole", or "Département 35 et Rennes Métropole"."""
        names = [o.name for o in self.owners()]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]

    def signed_territory_communes(self) -> set[str]:
        """Every commune of the owner's and the co-owners' territories."""
        out: set[str] = set()
        for o in self.owners():
            out |= o.territory.communes_covered()
        return out

    def effective_territory(self) -> TerritorySpec:
        """The segment's territory, or the owner's (with its co-owners') when the segment names none."""
        if not self.segment.territory.is_empty():
            return self.segment.territory
        if not self.co_owners:
            return self.owner.territory
        merged = {level: list(dict.fromkeys(code for o in self.owners()
                                            for code in getattr(o.territory, level)))
                  for level in ("communes", "epci", "departements", "regions")}
        return TerritorySpec(**merged)


def spec_warnings(spec: CampaignSpec) -> list[str]:
    """What the campaign says that is accepted but should be written otherwise, in French for its author, naming
    the field: today the durations in the ambiguous old unit `m` (`orchestrator.core.durations.ambiguous_m`)."""
    durations: list[tuple[str | int | None, str]] = [
        (step.delay, f"étape {number}, délai (delay)") for number, step in enumerate(spec.steps, start=1)]
    durations.append((spec.pressure.max_defer, "attente maximale d'un message (max_defer)"))
    if spec.schedule is not None:
        durations.append((spec.schedule.min_interval, "intervalle minimal entre deux contacts (min_interval)"))
    found = [ambiguous_m(value, what, "min") for value, what in durations]
    return [w for w in found if w is not None] + segment_warnings(spec.segment)


# Channels whose messages are rendered from the template library (`templates/messages/<channel>/<trigger>/`).
RENDERED_CHANNELS = ("email", "sms", "letter", "call", "relay")


def template_problems(spec: CampaignSpec, root: Path | None = None) -> list[str]:
    """What would fail at send time for want of a template, in French, naming the step: a step's template set
    missing for its channel or one of its fallbacks (``<channel>/<template>/default.j2`` serves every trade), or a
    variant without its own template for a step's channel (``<channel>/<template>/*.<variant>.j2``)."""
    root = Path(root) if root else Path(__file__).resolve().parents[2] / "templates" / "messages"
    problems = []
    for number, step in enumerate(spec.steps, start=1):
        where = f"étape {number} ({step.channel}, modèle « {step.template} »)"
        missing = [c for c in step.channels() if c in RENDERED_CHANNELS
                   and not (root / c / step.template / "default.j2").is_file()]
        if step.channel in missing:
            problems.append(f"{where} : ce modèle n'existe pas pour ce canal")
        elif missing:
            problems.append(f"{where} : pas de modèle « {step.template} » pour le canal de repli "
                            f"{', '.join(missing)}")
        if step.channel not in RENDERED_CHANNELS or step.channel in missing:
            continue
        for variant in spec.variants:
            if not any((root / step.channel / step.template).glob(f"*.{variant.name}.j2")):
                problems.append(f"{where} : la variante « {variant.name} » n'a pas de modèle pour cette étape "
                                f"(attendu : {step.channel}/{step.template}/default.{variant.name}.j2)")
    return problems


def load_spec(source: str | Path | dict[str, Any]) -> CampaignSpec:
    """Read and validate a campaign from a YAML/JSON file path, YAML text, or a dict (what `declic campaigns
    apply` and the dashboard form save): a step or variant whose template does not exist is refused too."""
    data: Any = source
    if isinstance(source, str) and "\n" in source:
        data = yaml.safe_load(source)
    elif not isinstance(source, dict):
        data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("une campagne est un document YAML avec des clés (name, owner, steps, ...)")
    spec = CampaignSpec.model_validate(data)
    problems = template_problems(spec)
    if problems:
        raise ValueError("modèles manquants : " + " ; ".join(problems))
    return spec
