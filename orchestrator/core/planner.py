"""The journey planner: pure. New trigger events (or a scheduled occurrence's businesses) and campaigns in,
enrollments and planned messages out, with the reason for every business left out.

It imports neither Prefect nor the store: `store.planning` gathers the inputs and applies the plan.

Decisions, in order, for each (business, campaign):
  not in the segment -> nothing (not even a skip: most businesses are not concerned by most campaigns);
  already enrolled for this trigger -> `already_enrolled`; closed -> `closed`; not to contact -> `not_to_contact`;
  contacted by this campaign within its minimum interval (scheduled campaigns) -> `recently_contacted`;
  no address on the step's channel nor its fallbacks -> `no_channel`; every address opted out -> `opted_out`;
  no send slot in the trade's window within the campaign's deferral once caps are counted -> `capped`;
  in a territory's global control group this year -> `global_holdout` (no campaign contacts it);
  arm, drawn among those that would be contacted (so both arms are comparable), deterministic from the
  business and its moment (trigger family and period), never from the campaign: holdout -> enrolled, never
  contacted, `holdout`.
One voice per moment: when several campaigns match one trigger event of a business, they are tried in the
order of `arbitration_key` (explicit priority, then the most local owner, then the oldest); the first that
enrols it (treatment or holdout) owns that moment, and every other one records the business as `covered`
by it, outside its reach, funnel and control group. A moment already owned by a stored enrollment of
another campaign covers it too, so a business held out for a moment is held out by every campaign.
Later steps are planned when they fall due (`plan_followups`), so that their condition (`no_click`...) is
judged on what really happened and their caps on the real history.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.core.campaign_spec import CampaignSpec, Step, parse_delay
from orchestrator.core.windows import holiday_checker, next_slot, overrides_key, place_of, window_for
from segments.taxonomy import normalize_naf

CONTACT_KIND = {"email": "email", "sms": "phone", "call": "phone", "letter": "postal"}
# Offer kinds that suit each moment best first (DOMAIN, Tableau 2: creation -> first steps, critical -> results).
OFFER_PREFERENCE = {
    "creation": ("diagnostic", "formation_courte", "coup_de_pouce"),
    "first_hire": ("financement", "accompagnement", "formation_courte"),
    "consolidation": ("accompagnement", "diagnostic"),
    "critical_period": ("accompagnement", "financement", "diagnostic"),
    "takeover": ("diagnostic", "accompagnement"),
    "deadline": ("formation_courte", "diagnostic", "coup_de_pouce"),
}


def _quick_init(cls: type) -> type:
    """A frozen slotted dataclass's `__init__` rewritten to set each slot through its descriptor, where the
    generated one calls `object.__setattr__` (which looks the same descriptor up) for each field: the same object,
    made about twice as fast (the planner makes ~2 M of them in a 400,000-business occurrence). Only for classes
    without `__post_init__`, default factories or keyword-only fields."""
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(f.default_factory is not dataclasses.MISSING or not f.init or f.kw_only
                                            for f in fields):
        raise TypeError(f"{cls.__name__}: the generated __init__ does more than set its fields")
    scope: dict[str, Any] = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in fields}
    scope.update({f"_default_{f.name}": f.default for f in fields if f.default is not dataclasses.MISSING})
    params = ", ".join(f.name if f.default is dataclasses.MISSING else f"{f.name}=_default_{f.name}" for f in fields)
    body = "".join(f"    _set_{f.name}(self, {f.name})\n" for f in fields)
    made: dict[str, Any] = {}
    exec(f"def __init__(self, {params}):\n{body}", scope, made)  # noqa: S102 -- as dataclasses makes __init__
    made["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = made["__init__"]  # type: ignore[misc]
    return cls


@_quick_init
@dataclass(frozen=True, slots=True)
class BusinessView:
    """What the planner knows of a business."""
    id: int
    siret: str
    name: str | None
    metier: str
    family: str | None
    family_label: str
    commune_code: str | None
    commune_nom: str | None
    epci_code: str | None
    departement_code: str | None
    region_code: str | None
    postal_code: str | None
    state: str
    do_not_contact: bool
    email: str | None
    phone: str | None
    postal: str | None  # the address block, when known
    phone_consent: bool = False  # call tasks only go to numbers with a consent or an existing relationship
    naf_code: str | None = None  # NAF sub-class (43.22A): the messages name the business from it
    # where its contacts came from ("sirene", "landing", a partner's name): each message says it (GDPR art. 14)
    email_source: str | None = None
    phone_source: str | None = None
    address_source: str | None = None
    relay: str | None = None  # the e-mail of its intermediary (`store.intermediaries`): a relay step's recipient
    paused_until: dt.datetime | None = None  # "pas le moment": nothing leaves for it before (aware UTC)
    free_offers_only: bool = False  # "trop cher": only free offers are shown to it


@_quick_init
@dataclass(frozen=True, slots=True)
class Candidate:
    """A new trigger event about a known business, or a business reached by a scheduled occurrence.

    For an occurrence, `campaign_id` names its campaign, `trigger_key` is `occurrence:<iso>` and `at` is
    the occurrence's instant; `event_id` is None.
    """
    event_id: int | None
    type: str
    occurred_on: dt.date
    business: BusinessView
    trigger_key: str | None = None
    campaign_id: int | None = None
    at: dt.datetime | None = None
    deadline: dict[str, Any] | None = None  # {label, date} of a regulatory deadline event
    source: str | None = None  # the event's source: "sirene", "bodacc", "calendar" or the partner's name

    @property
    def key(self) -> str:
        return self.trigger_key or self.type


@dataclass(frozen=True, slots=True)
class CampaignRule:
    """An active campaign as stored: id, version and its validated spec."""
    id: int
    version: int
    spec: CampaignSpec


@dataclass(frozen=True, slots=True)
class AmbassadorView:
    """An ambassador as the planner sees it: who, what they serve, and how many introductions are left this month."""
    id: int
    name: str
    metier: str | None
    phone: str | None
    email: str | None
    commune: str | None
    families: frozenset[str]  # "*" serves every family
    communes: frozenset[str]
    epcis: frozenset[str]
    departements: frozenset[str]  # départements served (given, or those of the communes and EPCI served)
    remaining: int
    nafs: frozenset[str] = frozenset()  # NAF sub-classes practised ("10.71C"): matched before the family


@dataclass(frozen=True, slots=True)
class OfferView:
    """An offer: what a template shows, and which trades and places it fits (empty means all)."""
    id: int
    title: str
    provider: str
    kind: str
    format: str | None
    duration: str | None
    hours: str | None
    price: str | None
    families: frozenset[str]
    communes: frozenset[str] = frozenset()
    epcis: frozenset[str] = frozenset()
    departements: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    grant: str | None = None  # who pays what, as a sentence: never folded into the price

    def as_context(self) -> dict[str, Any]:
        return {"title": self.title, "provider": self.provider, "kind": self.kind, "format": self.format,
                "duration": self.duration, "hours": self.hours, "price": self.price, "grant": self.grant}


@dataclass(frozen=True, slots=True)
class Policy:
    """Pressure limits across all campaigns and owners: at most `messages` per business in any `days` days."""
    caps: tuple[tuple[int, int], ...] = ((1, 7), (3, 30))
    # Channels whose settings are missing (no DECLIC_SMS_URL...): never chosen, the step's fallback applies.
    unavailable: frozenset[str] = frozenset()


DEFAULT_POLICY = Policy()


@_quick_init
@dataclass(frozen=True, slots=True)
class PlannedMessage:
    step: int
    channel: str
    template: str  # template set name; the family's file is resolved at render time
    recipient: str
    due_at: dt.datetime  # aware UTC
    context: dict[str, Any]
    variant: str | None = None


@_quick_init
@dataclass(frozen=True, slots=True)
class PlannedEnrollment:
    campaign_id: int
    campaign_version: int
    business_id: int
    event_id: int | None
    trigger_key: str
    trigger_type: str
    arm: str
    messages: tuple[PlannedMessage, ...]
    variant: str | None = None
    ambassador_id: int | None = None
    moment: str | None = None  # see `moment_of`


@dataclass(frozen=True, slots=True)
class Coverage:
    """A business a campaign matched but left to another for this moment (`covered`, by `covered_by`), or
    kept out of every campaign as part of its territory's global control group (`global`)."""
    campaign_id: int
    business_id: int
    event_id: int | None
    trigger_key: str
    trigger_type: str
    moment: str
    kind: str  # covered | global
    covered_by: int | None = None
    reason: str = ""  # in French: "déjà accompagnée par Rennes Métropole", "groupe témoin global ..."


@dataclass(frozen=True, slots=True)
class GlobalHoldout:
    """A territory's global control group: `percent` of its businesses that no campaign contacts for a year."""
    level: str  # commune | epci | departement | region
    code: str
    percent: float

    def contains(self, b: BusinessView) -> bool:
        return {"commune": b.commune_code, "epci": b.epci_code, "departement": b.departement_code,
                "region": b.region_code}.get(self.level) == self.code


@dataclass(frozen=True, slots=True)
class Skip:
    """A business a campaign did not contact, and why."""
    campaign_id: int | None
    event_id: int | None
    business_id: int
    # already_enrolled, closed, not_to_contact, recently_contacted, holdout, no_channel, opted_out, capped,
    # condition_not_met (a later step)
    reason: str


@dataclass(slots=True)
class Plan:
    enrollments: list[PlannedEnrollment] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    ambassador_gaps: int = 0  # treatment enrollments that fell back on the campaign's contact
    covered: list[Coverage] = field(default_factory=list)


def unit_hash(campaign_id: int, business_id: int, salt: str) -> float:
    """A stable number in [0, 1) for (campaign, business, salt): arms and variants without randomness."""
    digest = hashlib.blake2b(f"{campaign_id}:{business_id}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def arm_for(campaign_id: int, business_id: int, holdout_percent: float) -> str:
    """The former per-campaign draw (each campaign its own control group): kept for the simulation that shows
    why it was replaced (`orchestrator.core.effect_simulation`); the planner draws with `moment_arm`."""
    return "holdout" if unit_hash(campaign_id, business_id, "arm") * 100 < holdout_percent else "treatment"


def moment_parts(c: Candidate) -> tuple[str, str]:
    """(trigger family, period) of a candidate's moment: a trigger event is its type in the year it occurred;
    a scheduled occurrence is its campaign's own (its arm stays the business's from one occurrence to the next)."""
    if c.campaign_id is not None and c.event_id is None:
        return f"schedule-{c.campaign_id}", ""
    return c.type, str(c.occurred_on.year)


def moment_of(c: Candidate) -> str:
    """The key of a candidate's moment, stored on its enrollment: `creation:2026`, `schedule-4:occurrence:...`."""
    family, period = moment_parts(c)
    return f"{family}:{period or c.key}"


def moment_hash(business_id: int, family: str, period: str) -> float:
    """A stable number in [0, 1) for (business, trigger family, period), the same for every campaign."""
    digest = hashlib.blake2b(f"moment:{business_id}:{family}:{period}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def moment_arm(business_id: int, family: str, period: str, holdout_percent: float) -> str:
    """`holdout` for a stable share of businesses per moment, else `treatment`. Shared by every campaign: with
    equal percentages they hold out the same businesses, and a smaller percentage holds out a subset."""
    return "holdout" if moment_hash(business_id, family, period) * 100 < holdout_percent else "treatment"


def global_control(b: BusinessView, holdouts: Sequence[GlobalHoldout], year: int) -> GlobalHoldout | None:
    """The global control group holding this business out this year (the largest share among its
    territories: shares nest, as the draw is one number per business and year), or None."""
    found = [h for h in holdouts if h.contains(b)]
    if not found:
        return None
    widest = max(found, key=lambda h: h.percent)
    digest = hashlib.blake2b(f"global:{b.id}:{year}".encode(), digest_size=8).digest()
    return widest if int.from_bytes(digest, "big") / 2**64 * 100 < widest.percent else None


LOCALITY = {"communes": 0, "epci": 1, "departements": 2, "regions": 3}


def locality(spec: CampaignSpec) -> int:
    """How local the owner's territory is: commune 0 < EPCI 1 < département 2 < région 3 < national 4
    (the widest level it names; several régions count as national)."""
    terr = spec.owner.territory
    if len(terr.regions) > 1:
        return 4
    levels = [rank for name, rank in LOCALITY.items() if getattr(terr, name)]
    return max(levels) if levels else 4


def arbitration_key(rule: CampaignRule) -> tuple[int, int, int]:
    """Sort key of campaigns competing for one business's moment: the highest explicit priority first, then
    the most local owner, then the oldest campaign (the smallest id)."""
    return (-(rule.spec.priority or 0), locality(rule.spec), rule.id)


def covered_reason(winner: CampaignRule | None) -> str:
    """Why a campaign left a business to another, in French."""
    return f"déjà accompagnée par {winner.spec.signed_by()}" if winner else "déjà accompagnée par une autre campagne"


def variant_for(spec: CampaignSpec, campaign_id: int, business_id: int) -> str | None:
    """The A/B variant of a business in a campaign (stable), or None without variants."""
    if not spec.variants:
        return None
    point = unit_hash(campaign_id, business_id, "variant") * sum(v.weight for v in spec.variants)
    for v in spec.variants:
        point -= v.weight
        if point < 0:
            return v.name
    return spec.variants[-1].name


def matches(spec: CampaignSpec, trigger_type: str, b: BusinessView) -> bool:
    """Does this trigger about this business fall inside the campaign's families and territory?

    The full segment language is judged in SQL (`store.segment_sql.compile_segment`); this in-memory check
    covers families and territory for callers without a store.
    """
    if trigger_type not in spec.triggers:
        return False
    seg = spec.segment
    if seg.families and b.family not in seg.families:
        return False
    terr = spec.effective_territory()
    return terr.contains(b.commune_code, b.epci_code, b.departement_code, b.region_code)


def recipient_for(channel: str, b: BusinessView) -> str | None:
    """The business's address on a channel, if known (a call needs a consent or an existing relationship)."""
    if channel == "call":
        return b.phone if b.phone_consent else None
    return {"email": b.email, "sms": b.phone, "letter": b.postal, "relay": b.relay}.get(channel)


_CHANNELS_OF: dict[int, tuple[Step, list[str]]] = {}


def _step_channels(step: Step) -> list[str]:
    # Keyed by identity, holding the step so the id cannot be reused while cached.
    found = _CHANNELS_OF.get(id(step))
    if found is None or found[0] is not step:
        if len(_CHANNELS_OF) > 10_000:
            _CHANNELS_OF.clear()
        found = _CHANNELS_OF[id(step)] = (step, step.channels())
    return found[1]


def choose_channel(step: Step, b: BusinessView, suppressed: set[tuple[str, str]],
                   unavailable: frozenset[str] = frozenset()) -> tuple[str | None, str | None, str]:
    """(channel, recipient, "") for the first usable channel of the step, else (None, None, reason); a channel in
    `unavailable` (not configured) is passed over like one without an address."""
    opted_out = False
    for channel in _step_channels(step):
        if channel in unavailable:
            continue
        recipient = recipient_for(channel, b)
        if not recipient:
            continue
        kind = CONTACT_KIND.get(channel, channel)
        if (kind, recipient.lower() if kind == "email" else recipient) in suppressed:
            opted_out = True
            continue
        return channel, recipient, ""
    return None, None, "opted_out" if opted_out else "no_channel"


class PlaceIndex:
    """Ambassadors or offers by the places they serve, so a business only looks at those near it."""
    def __init__(self, items: Iterable[Any]):
        self.items = list(items)
        self.by: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
        self.national: list[Any] = []
        self.shortlists: dict[tuple[Any, ...], list[tuple[int, int, Any]]] = {}
        for item in self.items:
            places = ([("c", x) for x in item.communes] + [("e", x) for x in item.epcis]
                      + [("d", x) for x in item.departements] + [("r", x) for x in getattr(item, "regions", ())])
            if not places:
                self.national.append(item)
            for place in places:
                self.by[place].append(item)
        self.current: dict[Any, Any] | None = None  # by id, in an index renewed for other views of its items

    def renewed(self, items: Iterable[Any]) -> PlaceIndex:
        """An index of `items`, keeping this one's places and shortlists when every item serves what the one at its
        rank here served (same id, trades and places: ambassadors whose capacity left changed between two batches),
        else a new index. A shortlist may then hold an earlier view of an item: read its view by id (`current`)."""
        items = list(items)
        current = {item.id: item for item in items}
        if (len(items) != len(self.items) or len(current) != len(items)
                or not all(map(_serves_alike, items, self.items))):
            return PlaceIndex(items)
        index = copy.copy(self)  # the same places and shortlists
        index.items, index.current = items, current
        return index

    def near(self, b: BusinessView) -> list[Any]:
        """Items serving the business's commune, EPCI, département or région, and national ones."""
        found = {}
        for key in (("c", b.commune_code), ("e", b.epci_code), ("d", b.departement_code), ("r", b.region_code)):
            for item in self.by.get(key, ()):
                found[item.id] = item
        for item in self.national:
            found[item.id] = item
        return list(found.values())


_SERVED = ("nafs", "families", "communes", "epcis", "departements", "regions")


def _serves_alike(new: Any, old: Any) -> bool:
    """Whether two views of an item have the same id, trades and places (what an index and its shortlists read)."""
    if new is old:
        return True
    if new.id != old.id:
        return False
    for name in _SERVED:
        a, b = getattr(new, name, None), getattr(old, name, None)
        if a is not b and a != b:
            return False
    return True


def _indexed(items: Sequence[Any] | PlaceIndex) -> PlaceIndex:
    return items if isinstance(items, PlaceIndex) else PlaceIndex(items)


def pick_ambassador(b: BusinessView, ambassadors: Sequence[AmbassadorView] | PlaceIndex, remaining: dict[int, int]
                    ) -> AmbassadorView | None:
    """The ambassador serving the business's place with capacity left who is closest to its trade: one practising
    its NAF sub-class, else one of its family, else an adviser serving every trade; then the nearest (same
    commune or EPCI, else same département); then the one with most capacity left (spreads the load)."""
    best, best_key = None, None
    index = _indexed(ambassadors)
    for level, trade, a in _ambassador_shortlist(b, index):
        left = remaining.get(a.id, 0)
        if left <= 0:
            continue
        key = (trade, level, -left, a.id)
        if best_key is None or key < best_key:
            best, best_key = a, key
    if best is not None and index.current is not None:
        best = index.current[best.id]  # this batch's view (a kept shortlist may hold an earlier one)
    return best


def _ambassador_shortlist(b: BusinessView, index: PlaceIndex) -> list[tuple[int, int, AmbassadorView]]:
    """(level, trade: 0 same NAF sub-class / 1 same family / 2 every trade, ambassador) for those serving the
    business's family and place."""
    # Only the places some ambassador serves tell businesses apart: the shortlist is shared by the rest.
    commune = b.commune_code if ("c", b.commune_code) in index.by else None
    epci = b.epci_code if ("e", b.epci_code) in index.by else None
    naf = _dotted_naf(b.naf_code)
    key = (b.family, naf, commune, epci, b.departement_code)
    found = index.shortlists.get(key)
    if found is None:
        found = []
        for a in index.near(b):
            if naf is not None and naf in a.nafs:
                trade = 0
            elif b.family in a.families:
                trade = 1
            elif "*" in a.families:
                trade = 2
            else:
                continue
            if b.commune_code in a.communes or (b.epci_code and b.epci_code in a.epcis):
                level = 0
            elif b.departement_code and b.departement_code in a.departements:
                level = 1
            else:
                continue
            found.append((level, trade, a))
        index.shortlists[key] = found
    return found


@lru_cache(maxsize=4096)
def _dotted_naf(code: str | None) -> str | None:
    """A NAF sub-class as ambassadors store it ("4322A" -> "43.22A"), or None."""
    try:
        return normalize_naf(code) if code else None
    except ValueError:
        return None


def pick_offers(b: BusinessView, trigger_type: str, offers: Sequence[OfferView] | PlaceIndex, limit: int = 2
                ) -> list[OfferView]:
    """At most `limit` offers fitting the business's métier family and place, the most local and fitting first."""
    preference = OFFER_PREFERENCE.get(trigger_type, ())
    ranked = []
    for o in _indexed(offers).near(b):
        if o.families and b.family not in o.families and "*" not in o.families:
            continue
        if b.free_offers_only and not is_free_offer(o.price, o.grant):
            continue
        if b.commune_code in o.communes:
            level = 0
        elif b.epci_code in o.epcis:
            level = 1
        elif b.departement_code in o.departements:
            level = 2
        elif b.region_code in o.regions:
            level = 3
        elif not (o.communes or o.epcis or o.departements or o.regions):
            level = 4  # national
        else:
            continue
        kind_rank = preference.index(o.kind) if o.kind in preference else len(preference)
        ranked.append(((level, kind_rank, o.id), o))
    ranked.sort(key=lambda pair: pair[0])
    ordered = [o for _, o in ranked]
    if not ordered or limit <= 0:
        return []
    # Two offers of different kinds say more than two of the same.
    rest = ordered[1:]
    second = next((o for o in rest if o.kind != ordered[0].kind), rest[0] if rest else None)
    return ([ordered[0]] + ([second] if second is not None else []))[:limit]


def ambassador_context(a: AmbassadorView) -> dict[str, Any]:
    # One who serves every trade (an accounting firm, an adviser) is never presented as a peer of the trade.
    return {"name": a.name, "metier": a.metier, "phone": a.phone, "email": a.email, "commune": a.commune,
            "role": "conseiller" if "*" in a.families else "pair"}


_DUMPS: dict[int, tuple[Any, dict[str, Any]]] = {}


def _dumped(model: Any) -> dict[str, Any]:
    """`model.model_dump()`, computed once per model object (a copy: contexts are stored separately)."""
    found = _DUMPS.get(id(model))
    if found is None or found[0] is not model:
        if len(_DUMPS) > 10_000:
            _DUMPS.clear()
        found = _DUMPS[id(model)] = (model, model.model_dump())
    return dict(found[1])


_SPEC_PARTS: dict[int, tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = {}


def _spec_parts(spec: CampaignSpec) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The parts of a context that only depend on the campaign (sender, campaign, its contact as the adviser),
    computed once per spec object: every message of a batch repeats them. Callers copy them."""
    found = _SPEC_PARTS.get(id(spec))
    if found is None or found[0] is not spec:
        if len(_SPEC_PARTS) > 1000:
            _SPEC_PARTS.clear()
        campaign = {"name": spec.title or spec.name, "signed_by": spec.signed_by(),
                    "owners": [o.name for o in spec.owners()]}
        found = _SPEC_PARTS[id(spec)] = (spec, _sender(spec), campaign,
                                         dict(_dumped(spec.contact), role="conseiller"))
    return found[1], found[2], found[3]


def message_context(spec: CampaignSpec, b: BusinessView, c: Candidate,
                    ambassador: AmbassadorView | None = None, offers: Sequence[OfferView] = ()) -> dict[str, Any]:
    """The template context known at planning time (links are added at send time)."""
    meta: dict[str, Any] = {"ambassador_id": ambassador.id if ambassador else None,
                            "ambassador_gap": ambassador is None,
                            "offer_ids": [o.id for o in offers]}
    sender, campaign, contact = _spec_parts(spec)
    return {
        "business": {"siret": b.siret, "name": b.name, "metier": b.metier, "family": b.family, "naf": b.naf_code,
                     "family_label": b.family_label, "commune": b.commune_nom, "postal_code": b.postal_code},
        "ambassador": ambassador_context(ambassador) if ambassador else dict(contact),
        "offers": [o.as_context() for o in offers],
        "sender": dict(sender),
        "trigger": {"type": c.type, "occurred_on": c.occurred_on.isoformat()},
        "deadline": dict(c.deadline) if c.deadline else None,
        "campaign": dict(campaign, owners=list(campaign["owners"])),
        "origin": origin(b, c),
        "meta": meta,
    }


def origin(b: BusinessView, c: Candidate) -> dict[str, Any]:
    """Where the data behind a message came from (GDPR art. 14), as stored: the triggering event's source and
    the source of each contact; templates/wording.py says them in words for each channel."""
    return {"event": c.source, "email": b.email_source, "phone": b.phone_source, "address": b.address_source}


@_quick_init
@dataclass(frozen=True, slots=True)
class Personalised:
    """What a treatment message says to one business: its ambassador, offers, variant and render context."""
    ambassador: AmbassadorView | None
    offers: list[OfferView]
    variant: str | None
    context: dict[str, Any]


def personalise(spec: CampaignSpec, campaign_id: int, b: BusinessView, c: Candidate,
                ambassadors: Sequence[AmbassadorView] | PlaceIndex, offers: Sequence[OfferView] | PlaceIndex,
                remaining: dict[int, int], offer_cache: dict[tuple[Any, ...], list[OfferView]] | None = None
                ) -> Personalised:
    """The ambassador and offers matched to `b`, the variant drawn and the render context (links are added at send
    time); takes one introduction from `remaining`. The planner and the previews (`declic templates preview
    --campaign`, the dashboard's campaign preview) both call it, so what a preview shows is what leaves."""
    ambassador = pick_ambassador(b, ambassadors, remaining)
    if ambassador is not None:
        remaining[ambassador.id] -= 1
    offer_index = _indexed(offers)
    # Offers depend on the trade, the place and the moment only: the same few answers recur across a batch.
    offer_key = (b.free_offers_only, b.family, b.commune_code if ("c", b.commune_code) in offer_index.by else None,
                 b.epci_code if ("e", b.epci_code) in offer_index.by else None, b.departement_code,
                 b.region_code, c.type)
    chosen = offer_cache.get(offer_key) if offer_cache is not None else None
    if chosen is None:
        chosen = pick_offers(b, c.type, offer_index)
        if offer_cache is not None:
            offer_cache[offer_key] = chosen
    return Personalised(ambassador, chosen, variant_for(spec, campaign_id, b.id),
                        message_context(spec, b, c, ambassador, chosen))


def _sender(spec: CampaignSpec) -> dict[str, Any]:
    """Who speaks; a co-signed campaign names every co-owner after the sender (messages and landing page)."""
    sender = _dumped(spec.sender)
    others = [o.name for o in spec.co_owners if o.name not in sender["name"]]
    if others:
        names = [sender["name"], *others]
        sender["name"] = ", ".join(names[:-1]) + " et " + names[-1]
    return sender


class _Pressure:
    """Messages already planned or sent per business, across campaigns, and the caps they must respect."""
    def __init__(self, history: Mapping[int, Sequence[tuple[int, dt.datetime]]], policy: Policy):
        self.history = history
        self.added: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
        self.policy = policy
        # Caps of at least one message are kept by any business without messages: no need to look (most have none).
        self.positive = all(n >= 1 for n, _ in policy.caps)

    def times(self, business_id: int) -> list[tuple[int, dt.datetime]]:
        return list(self.history.get(business_id, ())) + self.added.get(business_id, [])

    def conflict(self, business_id: int, campaign_id: int, at: dt.datetime,
                 campaign_caps: Sequence[tuple[int, int]]) -> dt.datetime | None:
        """The earliest instant from which `at` could be free of the conflict found, or None when `at` is fine.

        A cap "n in d days" is kept by refusing `at` when n messages already sit within d days of it, on
        either side: conservative (it never lets a window hold more than n) and exact for n = 1.
        """
        if (self.positive and business_id not in self.added and not self.history.get(business_id)
                and all(n >= 1 for n, _ in campaign_caps)):
            return None
        entries = self.times(business_id)
        later: dt.datetime | None = None
        for caps, own in ((self.policy.caps, False), (campaign_caps, True)):
            for n, days in caps:
                span = dt.timedelta(days=days)
                near = [t for c, t in entries if (not own or c == campaign_id) and abs(t - at) < span]
                if len(near) >= n:
                    # Past the (len - n + 1)-th latest neighbour, one fewer stays within the span.
                    near.sort()
                    candidate = near[len(near) - n] + span
                    later = candidate if later is None else max(later, candidate)
        return later

    def add(self, business_id: int, campaign_id: int, at: dt.datetime) -> None:
        self.added[business_id].append((campaign_id, at))


class _Slots:
    """Send slots for a business's family and place, cached (the same few answers recur across a batch)."""
    def __init__(self, is_holiday: Callable[[dt.date], bool] | None,
                 cache: dict[tuple[Any, ...], dt.datetime] | None = None):
        self.is_holiday = is_holiday
        self.cache: dict[tuple[Any, ...], dt.datetime] = {} if cache is None else cache

    def slot(self, earliest: dt.datetime, spec: CampaignSpec, b: BusinessView) -> dt.datetime:
        key = (earliest, b.family, b.departement_code, spec.timing.weekends, spec.timing.holidays,
               overrides_key(spec.timing.windows) if spec.timing.windows else ())
        found = self.cache.get(key)
        if found is None:
            place = place_of(b.departement_code)
            window = window_for(b.family, weekends=spec.timing.weekends, holidays_allowed=spec.timing.holidays,
                                overrides=key[5])
            checker = self.is_holiday or holiday_checker(place.subdivision)
            found = self.cache[key] = next_slot(earliest, window, place.timezone, checker)
        return found


@dataclass
class PlanCaches:
    """Answers that recur from one `plan` call to the next of a batch planned in parts: send slots by trade and
    place, offers by trade, place and moment. Only for calls with the same offers and holiday calendar."""
    slots: dict[tuple[Any, ...], dt.datetime] = field(default_factory=dict)
    offers: dict[tuple[Any, ...], list[OfferView]] = field(default_factory=dict)


_PRESSURE_OF: dict[int, tuple[Any, tuple[tuple[int, int], ...], dt.timedelta]] = {}


def _pressure_of(spec: CampaignSpec) -> tuple[tuple[tuple[int, int], ...], dt.timedelta]:
    """The campaign's own caps as (messages, days) and its longest deferral, computed once per spec object (every
    first message of a batch asks)."""
    found = _PRESSURE_OF.get(id(spec))
    if found is None or found[0] is not spec:
        if len(_PRESSURE_OF) > 1000:
            _PRESSURE_OF.clear()
        found = _PRESSURE_OF[id(spec)] = (spec, tuple((c.messages, c.days) for c in spec.pressure.caps),
                                          parse_delay(spec.pressure.max_defer))
    return found[1], found[2]


def _schedule(slots: _Slots, pressure: _Pressure, spec: CampaignSpec, campaign_id: int, b: BusinessView,
              earliest: dt.datetime) -> dt.datetime | None:
    """The first slot at or after `earliest` inside the window and the caps, within the campaign's deferral."""
    caps, defer = _pressure_of(spec)
    first = due = slots.slot(earliest, spec, b)
    limit = first + defer
    for _ in range(12):
        later = pressure.conflict(b.id, campaign_id, due, caps)
        if later is None:
            return due
        if later > limit:
            return None
        due = slots.slot(later, spec, b)
    return None


def barred(b: BusinessView) -> str | None:
    """Why no message of any campaign may go to this business ("closed", "not_to_contact"), or None."""
    if b.state != "active":
        return "closed"
    if b.do_not_contact:
        return "not_to_contact"
    return None


def _place_later_message(step: Step, b: BusinessView, rule: CampaignRule, earliest: dt.datetime, *,
                         suppressed: set[tuple[str, str]], policy: Policy, slots: _Slots,
                         pressure: _Pressure) -> tuple[str, str, dt.datetime] | str:
    """(channel, recipient, due) of a message after the first (a later step, an answer's own message), its slot
    counted against the caps; or the reason it does not leave."""
    reason = barred(b)
    if reason:
        return reason
    channel, recipient, reason = choose_channel(step, b, suppressed, policy.unavailable)
    if channel is None:
        return reason
    due = _schedule(slots, pressure, rule.spec, rule.id, b, earliest)
    if due is None:
        return "capped"
    pressure.add(b.id, rule.id, due)
    return channel, recipient or "", due


def _trigger_start(c: Candidate, zone: ZoneInfo) -> dt.datetime:
    if c.at is not None:
        return c.at
    return dt.datetime.combine(c.occurred_on, dt.time(0), zone)


def plan(
    candidates: Iterable[Candidate],
    campaigns: Iterable[CampaignRule],
    *,
    now: dt.datetime,
    zone: ZoneInfo,
    enrolled: set[tuple[int, int, str]],
    suppressed: set[tuple[str, str]],
    is_holiday: Callable[[dt.date], bool] | None = None,
    eligible: Mapping[int, set[int]] | None = None,
    history: Mapping[int, Sequence[tuple[int, dt.datetime]]] | None = None,
    policy: Policy = DEFAULT_POLICY,
    ambassadors: Sequence[AmbassadorView] | PlaceIndex = (),
    offers: Sequence[OfferView] | PlaceIndex = (),
    recent: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(),
    moments: Mapping[tuple[int, str], tuple[int, str]] | None = None,
    global_holdouts: Sequence[GlobalHoldout] = (),
    introduced: Mapping[int, int] | None = None,
    caches: PlanCaches | None = None,
) -> Plan:
    """Enrol matching businesses and schedule their first step inside send windows and caps.

    `enrolled` holds (campaign id, business id, trigger key) already stored; `suppressed` holds (kind,
    normalised address) opt-outs; `eligible` maps a campaign id to the business ids its compiled segment
    selects among the candidates (without it, `matches` judges families and territory); `history` maps a
    business id to (campaign id, instant) of its messages planned or sent; `recent` holds (campaign,
    business) pairs contacted within the campaign's minimum interval; `moments` maps (business id, moment)
    to the (campaign id, arm) of the stored enrollment that owns it; `global_holdouts` are the territories'
    global control groups; `introduced` counts, by ambassador id, introductions decided but not stored yet (taken
    from their remaining capacity). `ambassadors` and `offers` may come indexed (`PlaceIndex`, built once for
    several calls), and `caches` shared by them. `now` is aware; `zone` is the deployment's, whose calendar days
    bound campaigns and start trigger days. `is_holiday` replaces the place's holiday calendar (tests).
    """
    out = Plan()
    campaigns = sorted(campaigns, key=arbitration_key)
    by_id = {r.id: r for r in campaigns}
    enrolled = set(enrolled)
    owned: dict[tuple[int, str], tuple[int, str]] = dict(moments or {})
    today = now.astimezone(zone).date()
    caches = caches if caches is not None else PlanCaches()
    slots = _Slots(is_holiday, caches.slots)
    pressure = _Pressure(history or {}, policy)
    ambassador_index, offer_index = _indexed(ambassadors), _indexed(offers)
    introduced = introduced or {}
    remaining = {a.id: a.remaining - introduced.get(a.id, 0) for a in ambassador_index.items}
    offer_cache = caches.offers
    for c in candidates:
        b = c.business
        rules = [by_id[c.campaign_id]] if c.campaign_id is not None and c.campaign_id in by_id else (
            [] if c.campaign_id is not None else campaigns)
        family, period = moment_parts(c)
        moment = moment_of(c)
        held_globally = global_control(b, global_holdouts, today.year) if global_holdouts else None
        for rule in rules:
            spec = rule.spec
            if (spec.starts_on and today < spec.starts_on) or (spec.ends_on and today > spec.ends_on):
                continue
            if c.campaign_id is None and c.type not in spec.triggers:
                continue
            if eligible is not None and rule.id in eligible:
                if b.id not in eligible[rule.id]:
                    continue
            elif c.campaign_id is None and not matches(spec, c.type, b):
                continue
            key = (rule.id, b.id, c.key)

            def skip(reason: str, rule: CampaignRule = rule, c: Candidate = c, b: BusinessView = b) -> None:
                out.skipped.append(Skip(rule.id, c.event_id, b.id, reason))

            def cover(kind: str, winner: int | None, reason: str, rule: CampaignRule = rule, c: Candidate = c,
                      b: BusinessView = b, moment: str = moment) -> None:
                out.covered.append(Coverage(rule.id, b.id, c.event_id, c.key, c.type, moment, kind, winner, reason))
                skip("global_holdout" if kind == "global" else "covered")

            owner = owned.get((b.id, moment))
            if owner is not None and owner[1] == "global":
                cover("global", None, _global_reason(held_globally))
                continue
            if key in enrolled or (owner is not None and owner[0] == rule.id):
                skip("already_enrolled")
                continue
            if owner is not None:
                # Another campaign owns this moment (enrolled it, or holds it out): one voice, one control group.
                cover("covered", owner[0], covered_reason(by_id.get(owner[0])))
                continue
            if reason := barred(b):
                skip(reason)
                continue
            if is_paused(b, now):
                skip("paused")
                continue
            if (rule.id, b.id) in recent:
                skip("recently_contacted")
                continue
            step = spec.steps[0]
            channel, recipient, reason = choose_channel(step, b, suppressed, policy.unavailable)
            if channel is None:
                skip(reason)
                continue
            earliest = max(now, _trigger_start(c, zone) + step.delay_td)
            due = _schedule(slots, pressure, spec, rule.id, b, earliest)
            if due is None:
                skip("capped")
                continue
            if held_globally is not None:
                # The territory's global control group: no campaign contacts it this year (the whole
                # programme's effect is measured against it). Drawn, like the arms, among the reachable.
                owned[(b.id, moment)] = (rule.id, "global")
                cover("global", None, _global_reason(held_globally))
                continue
            # The arm is drawn among businesses that would be contacted, so that both arms are comparable, and
            # from the business and its moment only, so that every campaign holds out the same businesses.
            if moment_arm(b.id, family, period, spec.holdout) == "holdout":
                # Counted (enrolled) so the effect can be measured against it, never contacted.
                enrolled.add(key)
                owned[(b.id, moment)] = (rule.id, "holdout")
                out.enrollments.append(PlannedEnrollment(rule.id, rule.version, b.id, c.event_id, c.key, c.type,
                                                         "holdout", (), None, None, moment))
                skip("holdout")
                continue
            owned[(b.id, moment)] = (rule.id, "treatment")
            chosen = personalise(spec, rule.id, b, c, ambassador_index, offer_index, remaining, offer_cache)
            ambassador, variant = chosen.ambassador, chosen.variant
            if ambassador is None:
                out.ambassador_gaps += 1
            pressure.add(b.id, rule.id, due)
            enrolled.add(key)
            message = PlannedMessage(0, channel, step.template, recipient or "", due, chosen.context, variant)
            out.enrollments.append(PlannedEnrollment(rule.id, rule.version, b.id, c.event_id, c.key, c.type,
                                                     "treatment", (message,), variant,
                                                     ambassador.id if ambassador else None, moment))
    return out


def _global_reason(holdout: GlobalHoldout | None) -> str:
    where = f" ({holdout.level} {holdout.code})" if holdout else ""
    return f"groupe témoin global du territoire{where} : aucune campagne ne la contacte cette année"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A journey whose previous step has left: the next step may be due."""
    enrollment_id: int
    campaign_id: int
    business: BusinessView
    step: int  # the step to plan now
    previous_sent_at: dt.datetime
    previous_clicked: bool
    converted: bool
    context: dict[str, Any]
    variant: str | None = None
    # An intermediary answered "je m'en occupe" or "déjà fait" about this business (`relay` channel): the
    # campaign's later direct messages stop (`relay_handled`), later relay steps still go to the intermediary.
    relayed: bool = False
    answer: str | None = None  # the action of the owner's "pas pour moi" answer in this journey, if any


@dataclass(frozen=True, slots=True)
class StepDecision:
    """A later step's outcome: a message to store, or the reason the journey stops there."""
    enrollment_id: int
    campaign_id: int
    business_id: int
    step: int
    message: PlannedMessage | None
    reason: str | None = None
    channel: str | None = None  # of a stopped step: what would have left (the history names it)
    template: str | None = None


def condition_met(condition: str | None, f: FollowUp) -> bool:
    """Does the previous message's outcome allow this step?"""
    if condition is None:
        return True
    return {"no_click": not f.previous_clicked, "clicked": f.previous_clicked,
            "no_conversion": not f.converted}[condition]


def plan_followups(
    followups: Iterable[FollowUp],
    campaigns: Iterable[CampaignRule],
    *,
    now: dt.datetime,
    suppressed: set[tuple[str, str]],
    history: Mapping[int, Sequence[tuple[int, dt.datetime]]] | None = None,
    policy: Policy = DEFAULT_POLICY,
    is_holiday: Callable[[dt.date], bool] | None = None,
) -> list[StepDecision]:
    """Plan the next step of journeys whose delay after the previous send has run out (the rest wait)."""
    by_id = {r.id: r for r in campaigns}
    slots = _Slots(is_holiday)
    pressure = _Pressure(history or {}, policy)
    out: list[StepDecision] = []
    for f in followups:
        rule = by_id.get(f.campaign_id)
        if rule is None or f.step >= len(rule.spec.steps):
            continue
        spec, b = rule.spec, f.business
        step = spec.steps[f.step]
        earliest = f.previous_sent_at + step.delay_td
        if earliest > now:
            continue  # not due yet: judged when it is, on what happened by then

        def stop(reason: str, f: FollowUp = f, b: BusinessView = b, step: Step = step) -> None:
            out.append(StepDecision(f.enrollment_id, f.campaign_id, b.id, f.step, None, reason, step.channel,
                                    step.template))

        if not condition_met(step.condition, f):
            stop("condition_not_met")
            continue
        if f.relayed and step.channel != "relay":
            stop("relay_handled")
            continue
        if is_paused(b, now):
            continue  # judged again when the pause is over (the store does not even gather it meanwhile)
        if f.answer in JOURNEY_ENDING_ANSWERS:
            stop("not_for_me")
            continue
        placed = _place_later_message(step, b, rule, max(now, earliest), suppressed=suppressed, policy=policy,
                                      slots=slots, pressure=pressure)
        if isinstance(placed, str):
            stop(placed)
            continue
        channel, recipient, due = placed
        out.append(StepDecision(f.enrollment_id, f.campaign_id, b.id, f.step,
                                PlannedMessage(f.step, channel, step.template, recipient, due,
                                               free_offers_context(f.context, b), f.variant)))
    return out


# --- answers to "Ce n'est pas pour moi" (issue 16) ---

# The actions after which the campaign's later steps do not leave: the answer's own message (after a pause, the
# peer's testimony) replaces them, or the journey ends there (already equipped, handing over).
JOURNEY_ENDING_ANSWERS = frozenset({"pause", "testimony", "end_and_ask", "takeover"})
# The step number of an answer's own message: outside any campaign's steps, one per enrollment.
ANSWER_STEP = 100
AFTER_PAUSE_TEMPLATE = "apres_pause"  # the gentle message once a pause is over
TESTIMONY_VARIANT = "temoignage"
TESTIMONY_DELAY = dt.timedelta(days=7)  # "pas utile pour mon métier": a peer's testimony a week later
ANSWER_CHANNELS = ("email", "sms", "letter")  # where the answer messages have templates
_FREE_PRICES = {"", "0", "0 €", "0€", "0,00 €", "gratuit", "gratuite", "offert", "offerte"}


def is_paused(b: BusinessView, now: dt.datetime) -> bool:
    """Whether the owner asked for a pause ("pas le moment") that is not over at `now`."""
    return b.paused_until is not None and now < b.paused_until


def is_free_offer(price: Any, grant: str | None) -> bool:
    """An offer that costs the owner nothing: a price of 0 or "gratuit", or no price but a grant paying for it."""
    text = " ".join(str(price if price is not None else "").split()).lower()
    if text in _FREE_PRICES or text.startswith("gratuit"):
        return bool(text) or bool(grant) or price == 0
    return False


def free_offers_context(context: dict[str, Any], b: BusinessView) -> dict[str, Any]:
    """A copy of a message context; for a business shown free offers only, without the offers that cost."""
    out = dict(context)
    if b.free_offers_only:
        out["offers"] = [o for o in context.get("offers") or [] if is_free_offer(o.get("price"), o.get("grant"))]
    return out


@dataclass(frozen=True, slots=True)
class AnswerDue:
    """An enrollment whose "pas pour moi" answer has a message of its own due now (`ANSWER_STEP`)."""
    enrollment_id: int
    campaign_id: int
    business: BusinessView
    action: str  # pause | testimony
    due_at: dt.datetime  # aware: the end of the pause, or the testimony's date
    context: dict[str, Any]


def answer_step(spec: CampaignSpec, action: str) -> tuple[Step, str | None]:
    """The step (template, channels) and variant of an answer's message: after a pause, the gentle message; for
    "pas utile", the campaign's first template in its testimony variant (a peer of the same trade speaks)."""
    first = spec.steps[0].channel if spec.steps[0].channel in ANSWER_CHANNELS else "email"
    rest = [c for c in ANSWER_CHANNELS if c != first]
    if action == "testimony":
        return Step(channel=first, template=spec.steps[0].template, fallback=rest), TESTIMONY_VARIANT
    return Step(channel=first, template=AFTER_PAUSE_TEMPLATE, fallback=rest), None


def plan_answer_messages(
    answers: Iterable[AnswerDue],
    campaigns: Iterable[CampaignRule],
    *,
    now: dt.datetime,
    suppressed: set[tuple[str, str]],
    history: Mapping[int, Sequence[tuple[int, dt.datetime]]] | None = None,
    policy: Policy = DEFAULT_POLICY,
    is_holiday: Callable[[dt.date], bool] | None = None,
) -> list[StepDecision]:
    """Plan the one message an answer asked for, once its date has come, in the send windows and caps (like any
    later step); a business closed, not to contact or without a usable address gets none (the reason is kept)."""
    by_id = {r.id: r for r in campaigns}
    slots = _Slots(is_holiday)
    pressure = _Pressure(history or {}, policy)
    out: list[StepDecision] = []
    for a in answers:
        rule = by_id.get(a.campaign_id)
        if rule is None or a.due_at > now or is_paused(a.business, now):
            continue
        spec, b = rule.spec, a.business
        step, variant = answer_step(spec, a.action)

        def stop(reason: str, a: AnswerDue = a, b: BusinessView = b, step: Step = step) -> None:
            out.append(StepDecision(a.enrollment_id, a.campaign_id, b.id, ANSWER_STEP, None, reason, step.channel,
                                    step.template))

        placed = _place_later_message(step, b, rule, max(now, a.due_at), suppressed=suppressed, policy=policy,
                                      slots=slots, pressure=pressure)
        if isinstance(placed, str):
            stop(placed)
            continue
        channel, recipient, due = placed
        context = free_offers_context(a.context, b)
        context["answer"] = a.action
        out.append(StepDecision(a.enrollment_id, a.campaign_id, b.id, ANSWER_STEP,
                                PlannedMessage(ANSWER_STEP, channel, step.template, recipient, due, context,
                                               variant)))
    return out


@dataclass(frozen=True, slots=True)
class Overlap:
    """Another owner's campaign reaching the same businesses for the same moment, and who speaks to them."""
    other: CampaignRule
    triggers: tuple[str, ...]
    winner_id: int  # the campaign that enrols a business both match (`arbitration_key`)


def overlaps(rule: CampaignRule, others: Iterable[CampaignRule]) -> list[Overlap]:
    """The campaigns sharing a trigger with `rule` whose territory and métier families intersect its own
    (a new campaign not stored yet has id 0: it would be the newest)."""
    spec = rule.spec
    mine = spec.effective_territory().communes_covered()
    out = []
    for other in others:
        if other.id == rule.id:
            continue
        shared = tuple(t for t in spec.triggers if t in other.spec.triggers)
        a, b = set(spec.segment.families), set(other.spec.segment.families)
        if not shared or (a and b and not a & b):
            continue
        if not mine & other.spec.effective_territory().communes_covered():
            continue
        winner = min((rule, other), key=lambda r: (*arbitration_key(r)[:2], r.id or 10**12))
        out.append(Overlap(other, shared, winner.id))
    return out
