"""The memory of Déclic: SQLModel tables.

Conventions: every datetime is aware and stored as UTC (SQLModel's UTCDateTime: timestamptz on
PostgreSQL); every date is a calendar date in France; JSON columns hold plain dicts and lists. The schema
itself is managed by Alembic (`store/migrations`); `declic init` creates or upgrades it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Computed, Index, SmallInteger, UniqueConstraint, false
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

# --- reference data (loaded by `declic init` from the files shipped in segments/data) ---


class MetierFamily(SQLModel, table=True):
    """A métier family owners recognise (bâtiment, alimentation, ...)."""

    key: str = Field(primary_key=True, max_length=40)
    label: str
    trade_phrase: str


class NafCode(SQLModel, table=True):
    """A NAF rév. 2 sub-class and its métier family."""

    code: str = Field(primary_key=True, max_length=6)
    label: str
    family: str = Field(max_length=40, index=True)
    metier: str


class Commune(SQLModel, table=True):
    """A commune (or an arrondissement / commune déléguée, with its parent) and its territory."""

    code: str = Field(primary_key=True, max_length=5)
    nom: str
    type: str = Field(max_length=30)
    parent: str | None = Field(default=None, max_length=5)
    epci: str | None = Field(default=None, max_length=9, index=True)
    departement: str = Field(max_length=3, index=True)
    region: str = Field(max_length=3)


class Territory(SQLModel, table=True):
    """A named territory above the commune: EPCI, département or région."""

    level: str = Field(primary_key=True, max_length=12)
    code: str = Field(primary_key=True, max_length=9)
    nom: str
    parent: str | None = Field(default=None, max_length=3)  # région of a département
    timezone: str | None = Field(default=None, max_length=40)


# --- businesses and where they come from ---


# Which contact points a business has, in the bits of segments.language.REACH_BITS (e-mail 1, phone 2, postal address
# 4), computed by the database from the columns: no writer sets it. A SQLite batch migration that rebuilds `business`
# must drop it first and add it back after, as 0021 adds it (SQLite refuses to copy into a generated column).
REACH_SQL = ("CASE WHEN email IS NOT NULL THEN 1 ELSE 0 END + CASE WHEN phone IS NOT NULL THEN 2 ELSE 0 END + "
             "CASE WHEN street IS NOT NULL AND postal_code IS NOT NULL AND city IS NOT NULL THEN 4 ELSE 0 END")


class Business(SQLModel, table=True):
    """An establishment (SIRET) with its trade, territory, life-cycle state and contact points."""

    __table_args__ = (
        # Segment counts by département and family, and their "reachable" filter, read this index alone.
        Index("ix_business_dep_family", "departement_code", "metier_family", "reach"),
        # The few businesses paused now ("pas le moment"), which later steps leave out: without it, every look for
        # due later steps read the whole table (0.8 s at 4 M businesses on PostgreSQL).
        Index("ix_business_paused_until", "paused_until", postgresql_where=sql_text("paused_until IS NOT NULL"),
              sqlite_where=sql_text("paused_until IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    siret: str = Field(max_length=14, unique=True, index=True)
    # Always the SIRET's first nine digits. Not indexed: a SIREN's establishments are the range of the SIRET index
    # from the SIREN to the SIREN followed by 99999 (`store.ingest.siren_range`); an index of its own cost every
    # business written a random insert (issue 18).
    siren: str = Field(max_length=9)
    name: str | None = None
    naf_code: str | None = Field(default=None, max_length=6)
    naf25_code: str | None = Field(default=None, max_length=8)
    metier_family: str | None = Field(default=None, max_length=40)
    commune_code: str | None = Field(default=None, max_length=5, index=True)
    # EPCI and région: not indexed (migration 0029). Every business written paid a random insert into each, and a
    # first load a sort of each; an EPCI is found by its communes, a région by its départements
    # (`store.segment_sql.place_clause`).
    epci_code: str | None = Field(default=None, max_length=9)
    departement_code: str | None = Field(default=None, max_length=3)
    region_code: str | None = Field(default=None, max_length=3)
    tranche_effectifs: str | None = Field(default=None, max_length=2)
    employer: bool | None = None
    creation_date: dt.date | None = None
    state: str = Field(default="active", max_length=10)  # active | closed
    do_not_contact: bool = False  # partial diffusion (Sirene "P") or a legal objection
    lifecycle_stage: str | None = Field(default=None, max_length=20)
    head_office: bool | None = None  # Sirene etablissementSiege: where a SIREN-only event (BODACC) lands
    # The legal unit's INSEE categorieEntreprise (PME, ETI, GE; StockUniteLegale or the Sirene API), by SIREN: it
    # decides the e-invoicing dates, not this establishment's head count. None: unknown (PME/micro dates).
    categorie_entreprise: str | None = Field(default=None, max_length=3)
    # The legal unit's INSEE categorieJuridiqueUniteLegale (1000 entrepreneur individuel, 54xx SARL, 57xx SAS...;
    # StockUniteLegale), by SIREN: segments select on it (`legal_forms`). None: unknown.
    categorie_juridique: str | None = Field(default=None, max_length=4)
    digital_maturity: int | None = None  # self-diagnostic score 0-5, when known
    # "Pas le moment" on the landing page: nothing leaves for it before this instant (planner and dispatcher).
    paused_until: dt.datetime | None = None
    # "Trop cher": only free offers (price 0, "gratuit", or a grant without a price) are shown to it from now on.
    free_offers_only: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    email: str | None = None
    email_source: str | None = Field(default=None, max_length=60)
    phone: str | None = Field(default=None, max_length=20)
    phone_source: str | None = Field(default=None, max_length=60)
    phone_consent: bool = False  # consent or existing relationship: required for call tasks
    street: str | None = None
    postal_code: str | None = Field(default=None, max_length=10)
    city: str | None = None
    address_source: str | None = Field(default=None, max_length=60)
    # The partner whose event created the row ("partner:<id>"); it may correct the row until Sirene places it.
    created_by: str | None = Field(default=None, max_length=60)
    created_at: dt.datetime
    updated_at: dt.datetime
    reach: int | None = Field(default=None, sa_column=Column(SmallInteger, Computed(REACH_SQL, persisted=True)))


class Partner(SQLModel, table=True):
    """An organisation pushing events (BGE, Adie, URSSAF, CMA...); its token is stored hashed."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    allowed_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Territory scope as "level:code" strings ("departement:35"); empty means national.
    territory: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    revoked_at: dt.datetime | None = None  # `declic partners revoke`: its token answers 401 ever after
    created_at: dt.datetime


class TriggerEvent(SQLModel, table=True):
    """A life-cycle or conversion event, stored once per (source, external_id)."""

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_trigger_event_source_external"),
        Index("ix_trigger_event_planned", "planned", "id"),
        # Ingests look up the few pending events (business not known yet) among millions, by SIRET or by SIREN:
        # partial indexes hold those alone (an index entry for every event stored cost each partner event two
        # random inserts; issue 18). A query uses them only when its WHERE carries `status = 'pending'` literally
        # (`store.ingest.IS_PENDING`); a scan of either lists every pending event.
        Index("ix_triggerevent_pending_siret", "siret", postgresql_where=sql_text("status = 'pending'"),
              sqlite_where=sql_text("status = 'pending'")),
        Index("ix_triggerevent_pending_siren", "siren", postgresql_where=sql_text("status = 'pending'"),
              sqlite_where=sql_text("status = 'pending'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=60)  # "partner:<id>", "sirene", "bodacc", "calendar"
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    external_id: str = Field(max_length=120)
    type: str = Field(max_length=30, index=True)
    siret: str | None = Field(default=None, max_length=14)
    siren: str | None = Field(default=None, max_length=9)
    business_id: int | None = Field(default=None, foreign_key="business.id", index=True)
    occurred_on: dt.date
    received_at: dt.datetime
    # accepted | pending (business unknown yet) | rejected (Sirene placed it outside the partner's territory)
    status: str = Field(default="accepted", max_length=12)
    planned: bool = False  # the planner has looked at it
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class BusinessProposal(SQLModel, table=True):
    """A detail a partner sent that was not applied (a commune over Sirene's, a name over another's): kept to see."""

    id: int | None = Field(default=None, primary_key=True)
    business_id: int = Field(foreign_key="business.id", index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    event_id: int | None = Field(default=None, foreign_key="triggerevent.id")
    field: str = Field(max_length=30)  # commune_code | name | naf_code | street | postal_code | city
    current_value: str | None = Field(default=None, max_length=200)
    proposed_value: str = Field(max_length=200)
    created_at: dt.datetime


class Campaign(SQLModel, table=True):
    """A collectivité's campaign: its validated spec (the same as the YAML), versioned."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    owner: str = Field(max_length=120)
    status: str = Field(default="active", max_length=10)  # active | paused | ended
    # Why the dispatcher paused it on its own (too many permanent failures), in plain French; paused_at
    # also marks where the next error count starts once an operator resumes it.
    paused_reason: str | None = None
    paused_at: dt.datetime | None = None
    version: int = 1
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class Enrollment(SQLModel, table=True):
    """A business entering a campaign for one trigger, in one arm (treatment or holdout)."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "business_id", "trigger_key", name="uq_enrollment_once"),
        Index("ix_enrollment_business_enrolled", "business_id", "enrolled_at"),
        Index("ix_enrollment_business_moment", "business_id", "moment"),
        # No index on campaign_id or business_id alone: the unique constraint and the index above lead with them.
        # Partial indexes of the few enrollments each batch of the planner looks for (every batch, while a
        # scheduled occurrence adds 400,000 enrollments without an entry in either): the "pas pour moi" answers
        # with a message due (`store.planning.due_answer_messages`) and the control groups, whose diagnostic
        # falls due (`store.rediagnostic.plan_rediagnostics`).
        Index("ix_enrollment_answer_due", "answer_due_at", postgresql_where=sql_text("answer_due_at IS NOT NULL"),
              sqlite_where=sql_text("answer_due_at IS NOT NULL")),
        Index("ix_enrollment_holdout", "campaign_id", "enrolled_at", postgresql_where=sql_text("arm = 'holdout'"),
              sqlite_where=sql_text("arm = 'holdout'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    business_id: int = Field(foreign_key="business.id")
    trigger_event_id: int | None = Field(default=None, foreign_key="triggerevent.id")
    trigger_key: str = Field(max_length=80)  # the trigger type (a business is enrolled once per trigger)
    trigger_type: str = Field(max_length=30)
    arm: str = Field(default="treatment", max_length=10)  # treatment | holdout
    variant: str | None = Field(default=None, max_length=20)
    campaign_version: int = 1
    enrolled_at: dt.datetime
    # The ambassador named in its messages; NULL on a treatment enrollment is a gap (the campaign's contact
    # stood in), which the dashboard shows.
    ambassador_id: int | None = Field(default=None, foreign_key="ambassador.id", index=True)
    # The business's moment (trigger family and period, `orchestrator.core.planner.moment_of`): one campaign owns it.
    moment: str | None = Field(default=None, max_length=120)
    # The owner's "Ce n'est pas pour moi" reason (`orchestrator.core.campaign_spec.NOT_FOR_ME_REASONS`) and the
    # action it took: the journey's later steps follow it (`orchestrator.core.planner.plan_followups`).
    not_for_me: str | None = Field(default=None, max_length=30)
    not_for_me_action: str | None = Field(default=None, max_length=30)
    # When the answer's own message is due (after a pause: one gentle message; "pas utile": a peer's testimony).
    answer_due_at: dt.datetime | None = None


class Coverage(SQLModel, table=True):
    """A business a campaign matched but left to the campaign that owns its moment (`covered`), or kept out of
    every campaign as part of its territory's global control group (`global`): outside its reach, funnel and
    control group, counted in its report."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "business_id", "trigger_key", name="uq_coverage_once"),
        Index("ix_coverage_business_moment", "business_id", "moment"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    business_id: int = Field(foreign_key="business.id")
    trigger_event_id: int | None = Field(default=None, foreign_key="triggerevent.id")
    trigger_key: str = Field(max_length=80)
    trigger_type: str = Field(max_length=30)
    moment: str = Field(max_length=120)
    kind: str = Field(max_length=10)  # covered | global
    covered_by: int | None = Field(default=None, foreign_key="campaign.id")
    reason: str = Field(default="", max_length=300)
    at: dt.datetime


class TerritoryHoldout(SQLModel, table=True):
    """A territory's global control group: a share of its businesses that no campaign contacts for a year."""

    __table_args__ = (UniqueConstraint("level", "code", name="uq_territoryholdout_place"),)

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=12)  # commune | epci | departement | region
    code: str = Field(max_length=12)
    percent: float
    set_by: str = Field(default="", max_length=120)
    set_at: dt.datetime


class Message(SQLModel, table=True):
    """The outbox: one planned message, sent at most once (unique per enrollment and step)."""

    __table_args__ = (
        UniqueConstraint("enrollment_id", "step", name="uq_message_enrollment_step"),
        Index("ix_message_due", "status", "due_at"),
        Index("ix_message_campaign_enrollment", "campaign_id", "enrollment_id"),  # also serves campaign_id alone
        # Messages outside a journey's steps (answers, re-diagnostics; `store.rediagnostic.asked`): few, so a report
        # finds them without reading every message of the table.
        Index("ix_message_campaign_extra_step", "campaign_id", "step", postgresql_where=sql_text("step >= 100"),
              sqlite_where=sql_text("step >= 100")),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    enrollment_id: int = Field(foreign_key="enrollment.id")
    business_id: int = Field(foreign_key="business.id", index=True)
    step: int = 0
    channel: str = Field(max_length=12)
    template: str = Field(max_length=200)
    variant: str | None = Field(default=None, max_length=20)
    recipient: str | None = None
    due_at: dt.datetime
    # planned -> claimed -> sent -> delivered; failed (permanent or out of retries); cancelled (opt-out, closure)
    status: str = Field(default="planned", max_length=12)
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    rfc_message_id: str | None = Field(default=None, max_length=200)
    provider_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = None
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime


class MessageEvent(SQLModel, table=True):
    """One step in a message's history: planned, claimed, sent, delivered, failed, clicked..."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    status: str = Field(max_length=20)
    at: dt.datetime
    detail: str | None = None


class Interaction(SQLModel, table=True):
    """What a business did: click, unsubscribe, callback request, feedback, conversion."""

    __table_args__ = (
        UniqueConstraint("trigger_event_id", name="uq_interaction_trigger_event_id"),
        Index("ix_interaction_campaign_enrollment", "campaign_id", "enrollment_id"),
        # A report reads a campaign's answers of one kind (adoption, diagnostics, "pas pour moi").
        Index("ix_interaction_campaign_kind", "campaign_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    business_id: int | None = Field(default=None, foreign_key="business.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    enrollment_id: int | None = Field(default=None, foreign_key="enrollment.id")
    kind: str = Field(max_length=30, index=True)
    at: dt.datetime
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The partner conversion event this row attributes (once per event: unique, NULLs allowed).
    trigger_event_id: int | None = Field(default=None, foreign_key="triggerevent.id")


class Suppression(SQLModel, table=True):
    """A global, permanent opt-out of one address or number, whatever campaign or tenant sent."""

    __table_args__ = (UniqueConstraint("channel", "address", name="uq_suppression_address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=12)  # email | sms | phone | postal
    address: str = Field(max_length=320)  # normalised: lower-case e-mail, E.164 number
    reason: str = Field(max_length=40)  # unsubscribe | stop_reply | bounce | complaint | manual
    source: str | None = Field(default=None, max_length=80)
    created_at: dt.datetime
    # Keyed hash (HMAC with the secret key) of the address, or of a SIRET (channel "siret"): an erased
    # person's identity stays refused without being kept in clear (`address` then holds "h:" + the hash).
    address_hash: str | None = Field(default=None, max_length=64, index=True)


class CallTask(SQLModel, table=True):
    """A call an adviser or ambassador should make, with its script; one per outbox message."""

    __table_args__ = (
        UniqueConstraint("message_id", name="uq_calltask_message"),
        Index("ix_calltask_queue", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id")
    business_id: int | None = Field(default=None, foreign_key="business.id", index=True)
    assignee: str = Field(max_length=80, index=True)  # "ambassador:<id>" or "adviser" (the shared queue)
    phone: str = Field(max_length=20, index=True)  # E.164
    script: str
    due_at: dt.datetime  # the next allowed call time (integrations.call_rules)
    status: str = Field(default="open", max_length=12)  # open | done | refused | no_answer (gave up)
    attempts: int = 0
    outcome_note: str | None = None
    # Every attempt as {"at": ISO 8601 UTC, "outcome": done|refused|no_answer}: the call-time rules need them.
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime
    updated_at: dt.datetime


class UserAccount(SQLModel, table=True):
    """A dashboard user: operator (all), collectivité (its territory) or ambassador (its call tasks)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)  # lower-case
    name: str = Field(max_length=120)
    password_hash: str = Field(max_length=200)  # argon2id
    role: str = Field(max_length=12)  # operator | collectivite | ambassador
    # Collectivité scope, as in a campaign spec: {"communes": [...], "epci": [...], "departements": [...], ...}
    territory: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    assignee: str | None = Field(default=None, max_length=80)  # ambassador's call-task queue: "ambassador:<id>"
    active: bool = True  # `declic users disable`: cannot sign in, its sessions end
    # In every session cookie it signs; sign-out, a new password and disabling bump it, ending older sessions.
    session_epoch: int = 0
    created_at: dt.datetime
    last_login_at: dt.datetime | None = None


class SignInFailure(SQLModel, table=True):
    """A wrong password for a dashboard e-mail: shared by every web process, so the lockout is too."""

    __table_args__ = (
        Index("ix_signinfailure_email_at", "email", "at"),
        Index("ix_signinfailure_source_at", "source", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)  # lower-case, as typed (the account may not exist)
    source: str = Field(default="", max_length=64)  # the client address: the lockout is per e-mail and address
    at: dt.datetime


class FunnelRollup(SQLModel, table=True):
    """Funnel counts of one campaign by arm, variant, trigger, métier family, commune and channel.

    Refreshed nightly (`declic report refresh`): the dashboard and `declic report` read it instead of
    scanning millions of messages when a campaign has been rolled up.
    """

    __table_args__ = (Index("ix_funnelrollup_campaign", "campaign_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    arm: str = Field(max_length=10)
    variant: str | None = Field(default=None, max_length=20)
    trigger_type: str | None = Field(default=None, max_length=30)
    metier_family: str | None = Field(default=None, max_length=40)
    commune_code: str | None = Field(default=None, max_length=5)
    epci_code: str | None = Field(default=None, max_length=9)
    departement_code: str | None = Field(default=None, max_length=3)
    channel: str | None = Field(default=None, max_length=12)
    targeted: int = 0
    contacted: int = 0
    delivered: int = 0
    clicked: int = 0
    responded: int = 0
    converted: int = 0
    contacted_converted: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # uplift numerator
    opted_out: int = 0
    conversion_days: float = 0.0  # sum over converted enrollments of days from enrollment to first conversion
    refreshed_at: dt.datetime
    # The breakdown this row belongs to (variant, trigger_type, metier_family, territory, channel): the other
    # dimensions are empty, so a report reads a few hundred rows whatever the campaign's size.
    grouping: str | None = Field(default=None, max_length=20)


class AdoptionRollup(SQLModel, table=True):
    """Adoption of one campaign's enrollments by arm, made with the funnel rollup (`store.report.refresh_rollup`).

    Per arm, one row with no category (enrollments that adopted a tool, and those among the contacted) and one
    per tool category (enrollments that adopted a tool of it). Targeted and contacted are the funnel rollup's.
    """

    __table_args__ = (Index("ix_adoptionrollup_campaign", "campaign_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    arm: str = Field(max_length=10)
    category: str | None = Field(default=None, max_length=40)
    adopted: int = 0
    contacted_adopted: int = 0
    # On the holdout's totals row: its controls that another campaign planned or sent a message to for the same
    # moment (issue 20's clean-control check, read by every report).
    control_contacted: int | None = None
    refreshed_at: dt.datetime


class GlobalEffectRollup(SQLModel, table=True):
    """A territory's global effect (`store.report.global_effects`: the whole programme against the territory's global
    control group) as of a rollup (`store.report.refresh_rollup`): one row per territory with a global control
    group (no campaign: the barometer's), and a copy for each campaign touching it (its report's).

    Why: counted live, one territory holding millions of enrollments took seconds in every report and barometer.
    """

    __table_args__ = (Index("ix_globaleffectrollup_campaign", "campaign_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    level: str = Field(max_length=12)
    code: str = Field(max_length=12)
    percent: float
    programme_n: int = 0
    programme_converted: int = 0
    global_n: int = 0
    global_converted: int = 0
    refreshed_at: dt.datetime


class OverlapRollup(SQLModel, table=True):
    """How many businesses a campaign's segment and an overlapping campaign's both select (`store.planning.
    campaign_overlaps`), as of a rollup, for the two specs' versions then: the campaign page reads it while
    neither campaign has changed (counted live, two département-wide segments took 250 ms each at 2.8 M businesses).
    """

    __table_args__ = (Index("ix_overlaprollup_campaign", "campaign_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    version: int
    other_id: int = Field(foreign_key="campaign.id")
    other_version: int
    businesses: int = 0
    refreshed_at: dt.datetime


# --- journeys: the peers and offers messages point to, and scheduled occurrences ---


class Ambassador(SQLModel, table=True):
    """A peer a message points to: an owner of the same métier family, an accountant, a student..."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)  # the importer's stable identifier (re-import updates)
    name: str
    metier: str | None = None
    families: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # "*" = all
    # NAF sub-classes practised ("10.71C"): a business of one of them is matched first, before its family.
    nafs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    communes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    epcis: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    departements: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = None
    commune: str | None = None  # where they work, as a message names it
    monthly_capacity: int = 10  # introductions a month
    active: bool = True
    created_at: dt.datetime
    updated_at: dt.datetime


class Offer(SQLModel, table=True):
    """A concrete support offer: diagnostic, short training, coaching, "coup de pouce", funding."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)
    title: str
    provider: str
    kind: str = Field(max_length=30)
    families: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty = all
    # Territory as "level:code" strings ("epci:243500139"); empty means national.
    territory: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    format: str | None = Field(default=None, max_length=20)  # sur_place | a_distance | mixte
    duration: str | None = None
    hours: str | None = None
    price: str | None = None
    # Who pays what, as a sentence ("La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 €"): not a price.
    grant: str | None = None
    url: str | None = None
    active: bool = True
    created_at: dt.datetime
    updated_at: dt.datetime


class CampaignOccurrence(SQLModel, table=True):
    """One occurrence of a scheduled campaign, planned in batches (a cursor over business ids)."""

    __table_args__ = (UniqueConstraint("campaign_id", "occurs_at", name="uq_occurrence_once"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    occurs_at: dt.datetime  # the scheduled instant (UTC); send slots follow each trade's window
    status: str = Field(default="running", max_length=10)  # running | done
    cursor: int = 0  # the last business id planned
    enrolled: int = 0
    missed: int = 0  # earlier occurrences this one stands for (the engine was down)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None


# --- watched feeds (issue 8) ---


class Feed(SQLModel, table=True):
    """A URL Déclic fetches on its own (partner file, open-data file or API) and what it last saw there."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    # partner-csv | partner-json | sirene | bodacc (files at a URL) | bodacc-api | sirene-api (built-in APIs)
    format: str = Field(max_length=20)
    url: str
    partner: str | None = Field(default=None, max_length=120)  # the partner the events belong to
    every_seconds: int = 86_400
    status: str = Field(default="active", max_length=10)  # active | paused
    # The NAME of an environment variable holding a token, never the token itself (nothing secret in the store).
    token_env: str | None = Field(default=None, max_length=80)
    etag: str | None = None
    last_modified: str | None = Field(default=None, max_length=64)
    content_hash: str | None = Field(default=None, max_length=64)  # sha256 of the last ingested body
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # API resume
    next_due_at: dt.datetime | None = None
    last_fetch_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_outcome: str | None = None  # last run in plain words ("inchangé (304)", "12 événements", ...)
    last_error: str | None = None  # the last failure in plain words, kept until a success
    failures: int = 0  # consecutive failed runs
    events_total: int = 0
    created_at: dt.datetime
    # Fetched from this machine or a private network on purpose (`feeds add --local`); otherwise refused.
    local: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


# --- personal data (issue 15) ---


class AuditEntry(SQLModel, table=True):
    """Who looked at, exported or erased personal data, when, from which role and territory (append-only)."""

    __table_args__ = (Index("ix_auditentry_at", "at"), Index("ix_auditentry_actor_at", "actor", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime
    actor: str = Field(max_length=320)  # a dashboard e-mail, "cli:<system user>" or "flow:<name>"
    role: str = Field(max_length=20)  # operator | collectivite | ambassador | cli | flow
    territory: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    action: str = Field(max_length=30)  # view_business | export_csv | privacy_export | erase | purge
    target: str = Field(max_length=200)  # "business:<id>", "campaign:<id>", a file name: never a contact
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Consent(SQLModel, table=True):
    """A specific consent to be called or texted: by one owner, for one purpose, with its source and text."""

    __table_args__ = (Index("ix_consent_business_owner", "business_id", "owner", "purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    business_id: int = Field(foreign_key="business.id")
    owner: str = Field(max_length=120)  # the campaign owner (controller) the person agreed to
    purpose: str = Field(max_length=20)  # call | sms
    phone: str | None = Field(default=None, max_length=20)  # the number agreed on (E.164)
    source: str = Field(max_length=120)  # "landing:<message id>", "call:<task id>", "partner:<id>"
    text: str  # the words the person agreed to
    given_at: dt.datetime
    withdrawn_at: dt.datetime | None = None
    withdrawn_source: str | None = Field(default=None, max_length=120)


# --- intermediaries: accountants, CMA/CCI and bank advisers, associations who relay to their clients (issue 16) ---


class Intermediary(SQLModel, table=True):
    """Someone a business already trusts (its accounting firm, a CMA/CCI or bank adviser, an association): the
    `relay` channel sends them one digest of their clients who hit a moment."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)  # the importer's stable identifier (re-import updates)
    name: str
    kind: str = Field(max_length=20)  # cabinet_comptable | cma | cci | banque | association | autre
    email: str | None = None
    phone: str | None = Field(default=None, max_length=20)
    commune: str | None = Field(default=None, max_length=5)  # where they work (commune code)
    # The places they serve as "level:code" strings ("epci:243500139"); empty when only their clients matter.
    territory: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: dt.datetime
    updated_at: dt.datetime


class IntermediaryClient(SQLModel, table=True):
    """A business (by SIRET, known or not yet) an intermediary serves, with where the link came from and when."""

    __table_args__ = (UniqueConstraint("intermediary_id", "siret", name="uq_intermediaryclient_link"),)

    id: int | None = Field(default=None, primary_key=True)
    intermediary_id: int = Field(foreign_key="intermediary.id", index=True)
    siret: str = Field(max_length=14, index=True)
    source: str = Field(max_length=120)  # the file name, or the partner that told
    linked_on: dt.date  # the date the source gives for the link (else the import's day)
    created_at: dt.datetime


class FollowupTask(SQLModel, table=True):
    """A follow-up 30 or 90 days after a callback, an enrolment or an ambassador meeting, for the ambassador or
    adviser who took it: its outcome is one of `store.followups.OUTCOMES`, with a line of why."""

    __table_args__ = (
        UniqueConstraint("interaction_id", "after_days", name="uq_followup_interaction_days"),
        Index("ix_followup_queue", "status", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id")
    business_id: int = Field(foreign_key="business.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    kind: str = Field(max_length=30)  # callback_request | offer_enrolled | ambassador_met
    assignee: str = Field(max_length=80, index=True)  # "ambassador:<id>" or "adviser"
    after_days: int  # 30 | 90
    due_on: dt.date
    status: str = Field(default="open", max_length=10)  # open | done
    outcome: str | None = Field(default=None, max_length=20)  # started | in_progress | abandoned
    category: str | None = Field(default=None, max_length=40)  # the tool started (an adoption category)
    note: str | None = None  # one line: why, next step
    done_at: dt.datetime | None = None
    done_by: str | None = Field(default=None, max_length=120)
    created_at: dt.datetime


# --- operations (issue 21) ---


class Notice(SQLModel, table=True):
    """The outbox of notices to people who are not the business: an operator's alert (a run failing twice, a campaign
    paused, a feed failing) or an ambassador's callback to make. One e-mail to one address, queued once per cause
    (its `cause_key`: the same failure streak, pause, outage or callback request of the day never queues twice) in
    the unit of work that records the cause, and sent by the dispatcher."""

    __table_args__ = (
        UniqueConstraint("cause_key", "recipient", name="uq_notice_cause_recipient"),
        Index("ix_notice_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # run_failed | campaign_paused | feed_failing | callback_request
    cause_key: str = Field(max_length=200)
    recipient: str = Field(max_length=320)
    subject: str
    body: str
    # The business and campaign it is about, when there is one (erasure and retention find it by them).
    business_id: int | None = Field(default=None, foreign_key="business.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    due_at: dt.datetime
    status: str = Field(default="planned", max_length=12)  # planned -> claimed -> sent | failed
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    last_error: str | None = None
    created_at: dt.datetime
