"""Personal data of one business, in SQL: gather it (right of access), erase it (right to erasure).

Plain functions on a connection; the service (`orchestrator.app.privacy`) computes the keyed hashes and
decides, this module only reads and writes rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.engine import Connection

from store.driver import driver_sql
from store.models import (
    Business,
    BusinessProposal,
    CallTask,
    Campaign,
    Consent,
    Enrollment,
    Interaction,
    Message,
    MessageEvent,
    Notice,
    Partner,
    Suppression,
    TriggerEvent,
)
from store.sql import among, chunks, insert_for
from store.suppressions import ADDRESS_KIND, normalize_address
from triggers.payload_schema import without_free_text

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
PROPOSALS = BusinessProposal.__table__
ENROLLMENTS = Enrollment.__table__
CAMPAIGNS = Campaign.__table__
MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
INTERACTIONS = Interaction.__table__
TASKS = CallTask.__table__
SUPPRESSIONS = Suppression.__table__
PARTNERS = Partner.__table__
CONSENTS = Consent.__table__
NOTICES = Notice.__table__

# Interaction data that is not free text nor a contact: kept by an erasure (the funnel reads `source`).
SAFE_INTERACTION_KEYS = ("source", "reason", "slot", "task_id", "score", "offer", "answers", "purpose")
# Business columns that hold personal data of a sole trader: emptied by an erasure.
PERSONAL_BUSINESS = ("name", "email", "email_source", "phone", "phone_source", "street", "postal_code", "city",
                     "address_source")
ERASED_TEXT = "(effacé)"


def fingerprint(secret: str, kind: str, value: str) -> str:
    """The keyed hash (HMAC-SHA256 with the secret key) of a SIRET ("siret"), an e-mail or a phone, normalised."""
    text = "".join(value.split()) if kind == "siret" else normalize_address(kind, value)
    return hmac.new(secret.encode(), f"{kind}:{text}".encode(), hashlib.sha256).hexdigest()


def _dicts(rows) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in rows]


def business_by_siret(conn: Connection, siret: str):
    """The business row of a SIRET, or None."""
    return conn.execute(select(BUSINESS).where(BUSINESS.c.siret == siret)).first()


def partner_names(conn: Connection) -> dict[int, str]:
    """Partner id -> name (events and businesses name their source by id)."""
    return dict(conn.execute(select(PARTNERS.c.id, PARTNERS.c.name)).all())


def addresses_of(conn: Connection, business_id: int) -> set[tuple[str, str]]:
    """Every (kind, address) the store holds for a business: its own, those written to, the call numbers."""
    row = conn.execute(select(BUSINESS.c.email, BUSINESS.c.phone).where(BUSINESS.c.id == business_id)).first()
    out: set[tuple[str, str]] = set()
    if row is not None:
        if row.email:
            out.add(("email", normalize_address("email", row.email)))
        if row.phone:
            out.add(("phone", normalize_address("phone", row.phone)))
    for channel, recipient in conn.execute(
            select(MESSAGES.c.channel, MESSAGES.c.recipient).distinct()
            .where(MESSAGES.c.business_id == business_id, MESSAGES.c.recipient.is_not(None))):
        kind = ADDRESS_KIND.get(channel, channel)
        if kind in ("email", "phone"):
            out.add((kind, normalize_address(kind, recipient)))
    for (phone,) in conn.execute(select(TASKS.c.phone).where(TASKS.c.business_id == business_id)):
        if phone:
            out.add(("phone", normalize_address("phone", phone)))
    return out


def gather(conn: Connection, business_id: int) -> dict[str, Any]:
    """Every row the store holds about one business and its contacts (the raw material of an export)."""
    campaigns = {r.id: r for r in conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name, CAMPAIGNS.c.owner))}
    # `reach` is derived from the contact columns (for the segment index), not a fact held about the business.
    held = [c for c in BUSINESS.c if c.name != "reach"]
    business = dict(conn.execute(select(*held).where(BUSINESS.c.id == business_id)).first()._mapping)
    events = _dicts(conn.execute(select(EVENTS).where(EVENTS.c.business_id == business_id).order_by(EVENTS.c.id)))
    proposals = _dicts(conn.execute(select(PROPOSALS).where(PROPOSALS.c.business_id == business_id)
                                    .order_by(PROPOSALS.c.id)))
    enrollments = _dicts(conn.execute(select(ENROLLMENTS).where(ENROLLMENTS.c.business_id == business_id)
                                      .order_by(ENROLLMENTS.c.id)))
    messages = _dicts(conn.execute(select(MESSAGES).where(MESSAGES.c.business_id == business_id)
                                   .order_by(MESSAGES.c.id)))
    history: dict[int, list[dict[str, Any]]] = {}
    for part in chunks([m["id"] for m in messages], 900):
        for h in conn.execute(select(HISTORY).where(HISTORY.c.message_id.in_(part)).order_by(HISTORY.c.id)):
            history.setdefault(h.message_id, []).append(dict(h._mapping))
    for m in messages:
        m["history"] = history.get(m["id"], [])
    interactions = _dicts(conn.execute(select(INTERACTIONS).where(INTERACTIONS.c.business_id == business_id)
                                       .order_by(INTERACTIONS.c.id)))
    tasks = _dicts(conn.execute(select(TASKS).where(TASKS.c.business_id == business_id).order_by(TASKS.c.id)))
    addresses = addresses_of(conn, business_id)
    suppressions = []
    for kind in ("email", "phone"):
        wanted = sorted(a for k, a in addresses if k == kind)
        for part in chunks(wanted, 900):
            suppressions += _dicts(conn.execute(select(SUPPRESSIONS).where(
                SUPPRESSIONS.c.channel == kind, SUPPRESSIONS.c.address.in_(part))))
    for rows in (enrollments, messages, interactions):
        for r in rows:
            c = campaigns.get(r.get("campaign_id"))
            r["campaign"] = c.name if c else None
            r["owner"] = c.owner if c else None
    return {"business": business, "events": events, "proposals": proposals, "enrollments": enrollments,
            "messages": messages, "interactions": interactions, "call_tasks": tasks,
            "suppressions": sorted(suppressions, key=lambda s: s["id"]), "partners": partner_names(conn)}


# --- erasure ---


def erase_business(conn: Connection, business_id: int, *, siret: str, pseudo_siret: str,
                   now: dt.datetime) -> dict[str, int]:
    """Empty every personal column of one business and what hangs from it; rows stay (campaign counts hold).

    The SIRET and SIREN become `pseudo_siret` (a keyed hash, computed by the caller); contacts, name and
    address are emptied and the business is marked not to contact. Returns the rows changed by table.
    """
    counts: dict[str, int] = {}
    pseudo_siren = pseudo_siret[:9]
    counts["business"] = conn.execute(
        update(BUSINESS).where(BUSINESS.c.id == business_id).values(
            siret=pseudo_siret, siren=pseudo_siren, phone_consent=False, do_not_contact=True,
            digital_maturity=None, updated_at=now, **dict.fromkeys(PERSONAL_BUSINESS))).rowcount or 0
    counts["triggerevent"] = conn.execute(
        update(EVENTS).where(EVENTS.c.business_id == business_id)
        .values(siret=pseudo_siret, siren=pseudo_siren, payload={},  # Sirene's ids hold the SIRET
                external_id=func.replace(func.replace(EVENTS.c.external_id, siret, pseudo_siret),
                                         siret[:9], pseudo_siren))).rowcount or 0
    counts["businessproposal"] = conn.execute(
        delete(PROPOSALS).where(PROPOSALS.c.business_id == business_id)).rowcount or 0
    message_ids = [r[0] for r in conn.execute(select(MESSAGES.c.id).where(MESSAGES.c.business_id == business_id))]
    total = 0
    for part in chunks(message_ids, 900):
        metas = conn.execute(select(MESSAGES.c.id, MESSAGES.c.context).where(MESSAGES.c.id.in_(part))).all()
        for id_, context in metas:
            total += conn.execute(update(MESSAGES).where(MESSAGES.c.id == id_).values(
                recipient=None, context=erased_context(context or {}), last_error=None,
                status=_stopped(MESSAGES.c.status))).rowcount or 0
        conn.execute(update(HISTORY).where(HISTORY.c.message_id.in_(part)).values(detail=None))
    counts["message"] = total
    changed = 0
    for id_, data in conn.execute(select(INTERACTIONS.c.id, INTERACTIONS.c.data)
                                  .where(INTERACTIONS.c.business_id == business_id)).all():
        changed += conn.execute(update(INTERACTIONS).where(INTERACTIONS.c.id == id_)
                                .values(data=safe_interaction_data(data or {}))).rowcount or 0
    counts["interaction"] = changed
    counts["calltask"] = conn.execute(
        update(TASKS).where(TASKS.c.business_id == business_id)
        .values(phone="", script=ERASED_TEXT, outcome_note=None, updated_at=now,
                status=_stopped(TASKS.c.status, open_value="open", closed="refused"))).rowcount or 0
    # An ambassador's callback e-mail about the business: not sent now, and not kept (it only told someone).
    counts["notice"] = conn.execute(delete(NOTICES).where(NOTICES.c.business_id == business_id)).rowcount or 0
    return {k: v for k, v in counts.items() if v}


def _stopped(column, open_value: str = "planned", closed: str = "cancelled"):
    """A status expression: what was still waiting to go is stopped, the rest is kept as it was."""
    return case((column == open_value, closed), else_=column)


def erased_context(context: dict[str, Any]) -> dict[str, Any]:
    """A message context without the business's details: the trade family and campaign stay for the counts."""
    business = context.get("business") or {}
    kept = {k: business[k] for k in ("family", "family_label", "metier") if k in business}
    out = {"business": kept, "erased": True}
    for key in ("campaign", "trigger", "meta"):
        if key in context:
            out[key] = context[key]
    return out


def safe_interaction_data(data: dict[str, Any]) -> dict[str, Any]:
    """Interaction data without free text or contacts (the keys the counts and reports read)."""
    return {k: v for k, v in data.items() if k in SAFE_INTERACTION_KEYS}



def delete_consents(conn: Connection, business_id: int) -> int:
    """Forget the consents of an erased business."""
    return conn.execute(delete(CONSENTS).where(CONSENTS.c.business_id == business_id)).rowcount or 0


PURPOSES = {"call": "appel", "sms": "SMS"}
# The words of the landing page's callback form, as the person agreed to them.
CALLBACK_CONSENT_TEXT = ("Rappelez-moi : j'accepte que {owner} (ou la personne qu'il désigne) m'appelle à ce numéro "
                         "au sujet de ses actions pour le numérique des entreprises.")
# The words of the landing page's SMS box, as the person ticked them.
SMS_CONSENT_TEXT = ("J'accepte aussi de recevoir des SMS de {owner} à ce numéro au sujet de ses actions pour le "
                    "numérique des entreprises. Je peux répondre STOP à tout moment.")


def consents_of(conn: Connection, business_id: int) -> list[dict[str, Any]]:
    """The consents recorded for a business: each specific one (owner, purpose, date, source, text), and the
    relationship a partner declared for the business's number, if any."""
    out = [{"objet": PURPOSES.get(c.purpose, c.purpose), "porteur": c.owner, "numéro": c.phone, "source": c.source,
            "texte": c.text, "donné le": c.given_at, "retiré le": c.withdrawn_at, "retrait": c.withdrawn_source}
           for c in conn.execute(select(CONSENTS).where(CONSENTS.c.business_id == business_id)
                                 .order_by(CONSENTS.c.id))]
    b = conn.execute(select(BUSINESS.c.phone_consent, BUSINESS.c.phone_source)
                     .where(BUSINESS.c.id == business_id)).first()
    if b is not None and b.phone_consent:
        out.append({"objet": "appel (relation existante déclarée)", "porteur": None, "source": b.phone_source,
                    "texte": None})
    return out


def give_consent(conn: Connection, *, business_id: int, owner: str, purpose: str, phone: str | None, source: str,
                 text: str, at: dt.datetime) -> None:
    """Record a specific consent (the same owner, purpose and number again: the live one is kept)."""
    live = conn.execute(select(CONSENTS.c.id).where(
        CONSENTS.c.business_id == business_id, CONSENTS.c.owner == owner, CONSENTS.c.purpose == purpose,
        CONSENTS.c.phone == phone, CONSENTS.c.withdrawn_at.is_(None))).first()
    if live is None:
        conn.execute(CONSENTS.insert().values(business_id=business_id, owner=owner, purpose=purpose, phone=phone,
                                              source=source[:120], text=text, given_at=at))


def withdraw_consents(conn: Connection, *, business_id: int, owner: str | None, purpose: str, source: str,
                      at: dt.datetime) -> int:
    """Withdraw the live consents of a business for a purpose (of one owner, or all); planned ones stop."""
    query = update(CONSENTS).where(CONSENTS.c.business_id == business_id, CONSENTS.c.purpose == purpose,
                                   CONSENTS.c.withdrawn_at.is_(None))
    if owner is not None:
        query = query.where(CONSENTS.c.owner == owner)
    return conn.execute(query.values(withdrawn_at=at, withdrawn_source=source[:120])).rowcount or 0


def withdraw_for_task(conn: Connection, task_id: int, source: str, at: dt.datetime) -> int:
    """"Elle ne veut pas être appelée": the call consent given to the owner of that task's campaign is withdrawn."""
    found = conn.execute(select(TASKS.c.business_id, MESSAGES.c.campaign_id)
                         .select_from(TASKS.outerjoin(MESSAGES, MESSAGES.c.id == TASKS.c.message_id))
                         .where(TASKS.c.id == task_id)).first()
    if found is None or found.business_id is None:
        return 0
    owner = owner_of_campaign(conn, found.campaign_id)
    return withdraw_consents(conn, business_id=found.business_id, owner=owner, purpose="call", source=source, at=at)


def owner_of_campaign(conn: Connection, campaign_id: int | None) -> str | None:
    """The owner named by a campaign."""
    if campaign_id is None:
        return None
    return conn.execute(select(CAMPAIGNS.c.owner).where(CAMPAIGNS.c.id == campaign_id)).scalar_one_or_none()


def with_call_consent(conn: Connection, business_ids: Iterable[int]) -> set[int]:
    """The businesses with a live call consent given to any owner (the planner may plan a call for them)."""
    out: set[int] = set()
    for part in chunks(sorted(set(business_ids)), 900):
        # = ANY(array) on PostgreSQL: planning asks this for every batch (hundreds of ids, parsed anew otherwise)
        out.update(r[0] for r in conn.execute(select(CONSENTS.c.business_id).where(
            among(conn, CONSENTS.c.business_id, part), CONSENTS.c.purpose == "call",
            CONSENTS.c.withdrawn_at.is_(None))))
    return out


def live_call_numbers(conn: Connection, business_ids: Iterable[int]) -> dict[int, set[str]]:
    """The numbers each business agreed to be called on (live specific consents, any owner)."""
    out: dict[int, set[str]] = {}
    for part in chunks(sorted(set(business_ids)), 900):
        for business_id, phone in conn.execute(select(CONSENTS.c.business_id, CONSENTS.c.phone).where(
                CONSENTS.c.business_id.in_(part), CONSENTS.c.purpose == "call", CONSENTS.c.withdrawn_at.is_(None),
                CONSENTS.c.phone.is_not(None))):
            out.setdefault(business_id, set()).add(phone)
    return out


# What a campaign spec may declare as the legal basis of its SMS (`sms_legal_basis`): without a declaration, an SMS
# needs the person's own consent to that owner.
SMS_LEGITIMATE_INTEREST = "legitimate_interest"
CONSENT_CHANNELS = ("call", "sms")  # the channels whose messages need a consent (or a declared basis)


def without_consent(conn: Connection, rows) -> dict[int, str]:
    """Call and SMS messages that may not leave for want of a consent: {message id: "no_consent"}.

    A call needs a live call consent given to the campaign's owner for that number; an SMS needs a live SMS
    consent given to that owner for that number, unless the campaign declares the legitimate interest of
    B2B prospecting (`sms_legal_basis: legitimate_interest`). A relationship a partner declared for the
    business (`phone_consent`) counts for both. A consent is specific to its owner and purpose.
    """
    guarded = [r for r in rows if r.channel in CONSENT_CHANNELS]
    if not guarded:
        return {}
    campaigns = {c.id: c for c in conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.owner, CAMPAIGNS.c.spec)
                                                 .where(CAMPAIGNS.c.id.in_({r.campaign_id for r in guarded})))}

    def declared(campaign_id) -> bool:
        c = campaigns.get(campaign_id)
        return c is not None and (c.spec or {}).get("sms_legal_basis") == SMS_LEGITIMATE_INTEREST

    guarded = [r for r in guarded if not (r.channel == "sms" and declared(r.campaign_id))]
    if not guarded:
        return {}
    ids = {r.business_id for r in guarded}
    related = {r[0] for r in conn.execute(select(BUSINESS.c.id).where(BUSINESS.c.id.in_(ids),
                                                                      BUSINESS.c.phone_consent.is_(True)))}
    live = {(c.business_id, c.owner, c.purpose, c.phone) for c in conn.execute(
        select(CONSENTS.c.business_id, CONSENTS.c.owner, CONSENTS.c.purpose, CONSENTS.c.phone).where(
            CONSENTS.c.business_id.in_(ids), CONSENTS.c.purpose.in_(CONSENT_CHANNELS),
            CONSENTS.c.withdrawn_at.is_(None)))}
    out = {}
    for r in guarded:
        if r.business_id in related:
            continue
        c = campaigns.get(r.campaign_id)
        if (r.business_id, c.owner if c else None, r.channel, r.recipient) not in live:
            out[r.id] = "no_consent"
    return out


# --- keyed hashes of erased identities ---


def keep_hashes(conn: Connection, hashed: Iterable[tuple[str, str | None, str]], *, reason: str = "erasure",
                source: str = "effacement", now: dt.datetime) -> int:
    """Keep (kind, clear address or None, hash) in the suppression list as hashes only.

    A suppression row of that address in clear is rewritten to its hash; otherwise a hashed row is added.
    Planned messages to those addresses are cancelled. Returns the hashes kept.
    """
    kept = 0
    for kind, address, digest in hashed:
        hidden = f"h:{digest}"
        if address is not None:
            conn.execute(update(SUPPRESSIONS).where(SUPPRESSIONS.c.channel == kind, SUPPRESSIONS.c.address == address)
                         .values(address=hidden, address_hash=digest))
            channels = [c for c, k in ADDRESS_KIND.items() if k == kind]
            conn.execute(update(MESSAGES).where(MESSAGES.c.status == "planned", MESSAGES.c.channel.in_(channels),
                                                MESSAGES.c.recipient == address)
                         .values(status="cancelled", last_error="opt-out"))
        stmt = insert_for(conn, SUPPRESSIONS).on_conflict_do_nothing(index_elements=["channel", "address"])
        conn.execute(stmt, {"channel": kind, "address": hidden, "address_hash": digest, "reason": reason,
                            "source": source, "created_at": now})
        kept += 1
    return kept


_ANY_ERASED = "SELECT 1 FROM suppression WHERE address_hash IS NOT NULL LIMIT 1"


def any_erased(conn: Connection) -> bool:
    """Whether any identity was ever erased: one indexed look at the suppression list. When none was (the common
    case), there is nothing to hash."""
    return bool(driver_sql(conn, _ANY_ERASED).rows)


def hashed_among(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Which of these keyed hashes are kept in the suppression list (erased identities)."""
    found: set[str] = set()
    for part in chunks(sorted(set(digests)), 900):
        found.update(r[0] for r in conn.execute(select(SUPPRESSIONS.c.address_hash)
                                                .where(among(conn, SUPPRESSIONS.c.address_hash, part))))
    return found


def forget_contacts(conn: Connection, business_ids: Iterable[int], now: dt.datetime) -> int:
    """A business that an erased identity came back as: no contact kept, never contacted, events stripped."""
    total = 0
    for part in chunks(sorted(set(business_ids)), 900):
        total += conn.execute(update(BUSINESS).where(BUSINESS.c.id.in_(part)).values(
            email=None, email_source=None, phone=None, phone_source=None, phone_consent=False,
            do_not_contact=True, updated_at=now)).rowcount or 0
        conn.execute(update(EVENTS).where(EVENTS.c.business_id.in_(part)).values(payload={}))
        conn.execute(update(MESSAGES).where(MESSAGES.c.business_id.in_(part), MESSAGES.c.status == "planned")
                     .values(status="cancelled", last_error="opt-out"))
    return total


# --- retention ---

# What a person does that restarts the retention clock (a contact they initiate).
PERSON_INITIATED = ("click", "callback_request", "not_for_me", "diagnostic_completed", "sms_reply", "unsubscribe",
                    "offer_enrolled", "ambassador_met")
FREE_TEXT_KEYS = ("note", "detail", "text", "body", "message")
NO_OWNER = "(sans porteur)"


def retention_due(conn: Connection, *, contact_before: dt.datetime, text_before: dt.datetime
                  ) -> dict[tuple[str, str], list[int]]:
    """What the retention policy removes now: {(table, owner): row ids}.

    business: contacts of businesses created before `contact_before` whose last person-initiated contact
    (if any) is older too; message: bodies (context) and recipients of messages sent or planned before
    `text_before`; interaction: free text older than that; calltask: notes and numbers of tasks last
    touched before it; triggerevent: the free text (and undeclared fields) of partner payloads received before
    it, their declared data fields staying (`triggers.payload_schema`); notice: the e-mails about a business (an
    ambassador's callback) queued before it and gone. Rows already emptied are left out.
    """
    owners = dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.owner)).all())
    out: dict[tuple[str, str], list[int]] = {}

    def add(table: str, owner: str | None, id_: int) -> None:
        out.setdefault((table, owner or NO_OWNER), []).append(id_)

    last = (select(INTERACTIONS.c.business_id, func.max(INTERACTIONS.c.at).label("at"))
            .where(INTERACTIONS.c.kind.in_(PERSON_INITIATED), INTERACTIONS.c.business_id.is_not(None))
            .group_by(INTERACTIONS.c.business_id).subquery())
    latest_campaign = (select(ENROLLMENTS.c.business_id, func.max(ENROLLMENTS.c.campaign_id).label("campaign_id"))
                       .group_by(ENROLLMENTS.c.business_id).subquery())
    rows = conn.execute(
        select(BUSINESS.c.id, latest_campaign.c.campaign_id)
        .select_from(BUSINESS.outerjoin(last, last.c.business_id == BUSINESS.c.id)
                     .outerjoin(latest_campaign, latest_campaign.c.business_id == BUSINESS.c.id))
        .where(BUSINESS.c.created_at < contact_before,
               (BUSINESS.c.email.is_not(None)) | (BUSINESS.c.phone.is_not(None)) | BUSINESS.c.phone_consent,
               (last.c.at.is_(None)) | (last.c.at < contact_before)))
    for id_, campaign_id in rows:
        add("business", owners.get(campaign_id), id_)
    for id_, campaign_id, context in conn.execute(
            select(MESSAGES.c.id, MESSAGES.c.campaign_id, MESSAGES.c.context)
            .where(MESSAGES.c.created_at < text_before, MESSAGES.c.status.not_in(("planned", "claimed")))):
        if context and not context.get("erased"):
            add("message", owners.get(campaign_id), id_)
    for id_, campaign_id, data in conn.execute(
            select(INTERACTIONS.c.id, INTERACTIONS.c.campaign_id, INTERACTIONS.c.data)
            .where(INTERACTIONS.c.at < text_before)):
        if any(k in (data or {}) for k in FREE_TEXT_KEYS):
            add("interaction", owners.get(campaign_id), id_)
    for id_, campaign_id in conn.execute(
            select(TASKS.c.id, MESSAGES.c.campaign_id)
            .select_from(TASKS.outerjoin(MESSAGES, MESSAGES.c.id == TASKS.c.message_id))
            .where(TASKS.c.updated_at < text_before, TASKS.c.status != "open", TASKS.c.script != ERASED_TEXT)):
        add("calltask", owners.get(campaign_id), id_)
    for id_, type_, payload in conn.execute(
            select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.payload)
            .where(EVENTS.c.received_at < text_before, EVENTS.c.partner_id.is_not(None))):
        if payload and without_free_text(type_, payload) != payload:
            add("triggerevent", None, id_)
    for id_, campaign_id in conn.execute(
            select(NOTICES.c.id, NOTICES.c.campaign_id)
            .where(NOTICES.c.business_id.is_not(None), NOTICES.c.created_at < text_before,
                   NOTICES.c.status.not_in(("planned", "claimed")))):
        add("notice", owners.get(campaign_id), id_)
    return out


def apply_retention(conn: Connection, due: dict[tuple[str, str], list[int]], now: dt.datetime) -> None:
    """Empty what `retention_due` found (rows stay: the counts of campaigns do not move)."""
    ids: dict[str, list[int]] = {}
    for (table, _owner), found in due.items():
        ids.setdefault(table, []).extend(found)
    for part in chunks(sorted(ids.get("business", [])), 900):
        conn.execute(update(BUSINESS).where(BUSINESS.c.id.in_(part)).values(
            email=None, email_source=None, phone=None, phone_source=None, phone_consent=False, updated_at=now))
        conn.execute(delete(CONSENTS).where(CONSENTS.c.business_id.in_(part)))
    for part in chunks(sorted(ids.get("message", [])), 900):
        for id_, context in conn.execute(select(MESSAGES.c.id, MESSAGES.c.context).where(MESSAGES.c.id.in_(part))):
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == id_)
                         .values(context=erased_context(context or {}), recipient=None))
    for part in chunks(sorted(ids.get("interaction", [])), 900):
        for id_, data in conn.execute(select(INTERACTIONS.c.id, INTERACTIONS.c.data)
                                      .where(INTERACTIONS.c.id.in_(part))):
            conn.execute(update(INTERACTIONS).where(INTERACTIONS.c.id == id_)
                         .values(data={k: v for k, v in (data or {}).items() if k not in FREE_TEXT_KEYS}))
    for part in chunks(sorted(ids.get("calltask", [])), 900):
        conn.execute(update(TASKS).where(TASKS.c.id.in_(part))
                     .values(phone="", script=ERASED_TEXT, outcome_note=None, updated_at=now))
    for part in chunks(sorted(ids.get("triggerevent", [])), 900):
        # Free text first: a partner payload keeps its declared data fields (codes, numbers, dates).
        for id_, type_, payload in conn.execute(select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.payload)
                                                .where(EVENTS.c.id.in_(part))):
            conn.execute(update(EVENTS).where(EVENTS.c.id == id_).values(payload=without_free_text(type_, payload)))
    for part in chunks(sorted(ids.get("notice", [])), 900):  # an e-mail that told someone: nothing to count
        conn.execute(delete(NOTICES).where(NOTICES.c.id.in_(part)))


# --- records of processing (art. 30) ---


def owner_campaigns(conn: Connection, owner: str) -> list[dict[str, Any]]:
    """The campaigns of an owner with what the register needs: spec, enrolled, messages by channel, sources."""
    out = []
    for c in conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.owner == owner).order_by(CAMPAIGNS.c.name)):
        enrolled = conn.execute(select(func.count()).select_from(ENROLLMENTS)
                                .where(ENROLLMENTS.c.campaign_id == c.id)).scalar_one()
        channels = dict(conn.execute(select(MESSAGES.c.channel, func.count()).where(MESSAGES.c.campaign_id == c.id)
                                     .group_by(MESSAGES.c.channel)).all())
        sources = sorted({r[0] for r in conn.execute(
            select(EVENTS.c.source).distinct()
            .select_from(EVENTS.join(ENROLLMENTS, ENROLLMENTS.c.business_id == EVENTS.c.business_id))
            .where(ENROLLMENTS.c.campaign_id == c.id))})
        out.append({"name": c.name, "status": c.status, "spec": c.spec or {}, "enrolled": enrolled,
                    "channels": channels, "sources": sources, "created_at": c.created_at})
    return out
