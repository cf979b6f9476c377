"""Campaigns without a file: a form that writes the same spec as the YAML of `declic campaigns apply`,
validated by the same `CampaignSpec`, with a preview of its reach and a sample message rendered for a
real business of the segment.

A collectivité's campaign always covers its own territory (the owner territory is its scope, not a form
field). Who may change what:
- a new campaign (or a copy) takes a name no campaign has: an existing one is never reached by its name;
- a campaign is edited (`?depuis=ID`) only by its owner (the collectivité whose territory is the campaign's
  owner territory) or an operator; a collectivité that sees a smaller one's campaign gets a copy form
  instead, which saves a new campaign under its own name and territory and leaves the original alone;
- the owner and its territory never change on edit, except by an operator, and then only after the
  preview has shown the change (the save carries the fingerprint of the owner the preview showed).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from orchestrator.campaign_spec import CHANNELS, CampaignSpec, load_spec
from store import accounts
from store.metrics import CHANNEL_LABELS, TRIGGER_LABELS, label_for
from store.models import Business, Campaign
from triggers.model import TRIGGER_TYPES
from web.auth import ScopeDep, require_csrf
from web.dashboard import render
from web.deps import EngineDep, SettingsDep

router = APIRouter(prefix="/tableau/campagnes", include_in_schema=False)
MAX_STEPS = 3
TEMPLATE_SETS = ("creation", "first_hire", "takeover", "critical_period", "consolidation", "deadline")


def _codes(text: str) -> list[str]:
    return [c.strip() for c in (text or "").replace(";", ",").split(",") if c.strip()]


def spec_from_form(form: dict[str, Any], scope: accounts.Scope) -> dict[str, Any]:
    """The campaign document (the YAML's shape) from the form's fields."""
    owner_territory = (
        scope.territory
        if scope.role == "collectivite"
        else accounts.parse_territory(form.get("owner_territory", ""))
    )
    steps = []
    for i in range(MAX_STEPS):
        template = (form.get(f"step{i}_template") or "").strip()
        if not template:
            continue
        steps.append(
            {
                "channel": form.get(f"step{i}_channel") or "email",
                "delay": (form.get(f"step{i}_delay") or "0d").strip(),
                "template": template,
            }
        )
    segment: dict[str, Any] = {"families": list(form.get("families") or [])}
    seg_territory = {
        k: v
        for k, v in (
            ("communes", _codes(form.get("segment_communes", ""))),
            ("epci", _codes(form.get("segment_epci", ""))),
        )
        if v
    }
    if seg_territory:
        segment["territory"] = seg_territory
    spec: dict[str, Any] = {
        "name": (form.get("name") or "").strip(),
        "title": (form.get("title") or "").strip() or None,
        "owner": {"name": (form.get("owner_name") or "").strip(), "territory": owner_territory},
        "sender": {
            "name": (form.get("sender_name") or "").strip(),
            "address": (form.get("sender_address") or "").strip(),
            "email": (form.get("sender_email") or "").strip() or None,
        },
        "contact": {
            "name": (form.get("contact_name") or "").strip(),
            "metier": (form.get("contact_metier") or "").strip() or None,
            "phone": (form.get("contact_phone") or "").strip() or None,
            "email": (form.get("contact_email") or "").strip() or None,
        },
        "triggers": list(form.get("triggers") or []),
        "segment": segment,
        "steps": steps,
        "holdout": float(form.get("holdout") or 0),
    }
    for key in ("starts_on", "ends_on"):
        if form.get(key):
            spec[key] = form[key]
    return spec


def validation_errors(exc: Exception) -> list[str]:
    """The spec's errors in the words `declic campaigns apply` uses (field path, then the reason)."""
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors():
            where = " > ".join(str(x) for x in err["loc"]) or "campagne"
            out.append(f"{where} : {err['msg'].removeprefix('Value error, ')}")
        return out
    return [str(exc)]


def preview(engine, spec: CampaignSpec, settings=None, campaign_id: int | None = None) -> dict[str, Any]:
    """Reach by métier family and commune today, and the first step rendered for one real business exactly as the
    dispatcher would send it (`orchestrator.message_preview`: the ambassador, offers and variant the planner would
    pick, real links)."""
    from orchestrator.message_preview import leaving_message
    from orchestrator.settings import get_settings
    from store.planning import business_view, segment_counts
    from templates.render import library

    today = dt.date.today()
    with engine.connect() as conn:
        counts = segment_counts(
            conn, spec.segment, today=today, territory=spec.effective_territory(), by=("family", "commune")
        )
        from store.planning import segment_clause

        sample_row = conn.execute(
            select(Business.__table__)
            .where(segment_clause(spec, today))
            .order_by(Business.__table__.c.id)
            .limit(1)
        ).first()
    reach = [
        {"family": label_for("metier_family", f), "commune": label_for("commune_code", c), "count": n}
        for f, c, n in counts
    ]
    sample = None
    if sample_row is not None:
        view = business_view(sample_row)
        step = spec.steps[0]
        try:
            leaving = leaving_message(settings or get_settings(), engine, library(), spec, campaign_id, sample_row,
                                      step.channels()[0], step.template)
            sample = {
                "business": view.name or view.siret,
                "channel": CHANNEL_LABELS.get(leaving.message.channel, leaving.message.channel),
                "subject": leaving.message.subject,
                "body": leaving.message.body,
                "template": leaving.template,
                "details": leaving.header_lines(),
            }
        except Exception as exc:  # a template missing for this channel: say so in the preview
            sample = {"business": view.name or view.siret, "error": f"message impossible à écrire : {exc}"}
    return {"reach": reach, "total": sum(r["count"] for r in reach), "sample": sample}


def overlaps_of(engine, spec: CampaignSpec, campaign_id: int | None) -> list[dict[str, Any]]:
    """Other owners' active campaigns this one would share businesses with, and who would win them."""
    from store.planning import campaign_overlaps

    with engine.connect() as conn:
        return [o for o in campaign_overlaps(conn, spec, campaign_id, dt.date.today()) if o["id"] != campaign_id]


def _form_page(request, scope, form, *, errors=None, result=None, status_code=200):
    from segments.taxonomy import families

    return render(
        request,
        scope,
        "dash_campaign_form.html",
        status_code=status_code,
        form=form,
        errors=errors or [],
        result=result,
        families=families(),
        triggers={t: TRIGGER_LABELS.get(t, t) for t in TRIGGER_TYPES},
        channels={c: CHANNEL_LABELS.get(c, c) for c in CHANNELS},
        template_sets={t: TRIGGER_LABELS.get(t, t) for t in TEMPLATE_SETS},
        max_steps=MAX_STEPS,
        territory_text=", ".join(f"{k}:{c}" for k, v in scope.territory.items() for c in v),
    )


def form_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for a stored campaign spec (the inverse of `spec_from_form`)."""
    owner, sender, contact = spec.get("owner") or {}, spec.get("sender") or {}, spec.get("contact") or {}
    segment = spec.get("segment") or {}
    seg_territory = segment.get("territory") or {}
    territory = owner.get("territory") or {}
    form: dict[str, Any] = {
        "name": spec.get("name", ""),
        "title": spec.get("title") or "",
        "owner_name": owner.get("name", ""),
        "owner_territory": ", ".join(f"{k}:{c}" for k, v in territory.items() for c in v or []),
        "sender_name": sender.get("name", ""),
        "sender_address": sender.get("address", ""),
        "sender_email": sender.get("email") or "",
        "contact_name": contact.get("name", ""),
        "contact_metier": contact.get("metier") or "",
        "contact_phone": contact.get("phone") or "",
        "contact_email": contact.get("email") or "",
        "triggers": list(spec.get("triggers") or []),
        "families": list(segment.get("families") or []),
        "segment_communes": ", ".join(seg_territory.get("communes") or []),
        "segment_epci": ", ".join(seg_territory.get("epci") or []),
        "holdout": str(int(spec.get("holdout") or 0)),
        "starts_on": spec.get("starts_on") or "",
        "ends_on": spec.get("ends_on") or "",
    }
    for i, step in enumerate((spec.get("steps") or [])[:MAX_STEPS]):
        form.update(
            {
                f"step{i}_channel": step.get("channel", "email"),
                f"step{i}_delay": str(step.get("delay", "0d")),
                f"step{i}_template": step.get("template", ""),
            }
        )
    return form


def merge_into(existing: dict[str, Any], edited: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with the form's fields replaced: what the form cannot show (timing, pressure,
    variants, schedule, step conditions, other segment filters) is kept, never dropped."""
    merged = copy.deepcopy(existing)
    for key in ("title", "owner", "sender", "contact", "triggers", "holdout", "starts_on", "ends_on"):
        if key in edited:
            merged[key] = edited[key]
        else:
            merged.pop(key, None)
    segment = dict(merged.get("segment") or {})
    segment["families"] = edited["segment"].get("families", [])
    if "territory" in edited["segment"]:
        segment["territory"] = edited["segment"]["territory"]
    else:
        segment.pop("territory", None)
    merged["segment"] = segment
    old_steps = existing.get("steps") or []
    merged["steps"] = [
        {**(old_steps[i] if i < len(old_steps) else {}), **step} for i, step in enumerate(edited["steps"])
    ]
    return merged


def _visible(engine, scope: accounts.Scope, campaign_id: str | int | None):
    """The campaign `campaign_id` if the scope sees it; None when no id is given; 404 otherwise."""
    if not campaign_id:
        return None
    try:
        wanted = int(campaign_id)
    except ValueError as exc:
        raise HTTPException(404, "Campagne introuvable.") from exc
    with engine.connect() as conn:
        row = accounts.campaign(conn, scope, wanted)
    if row is None:
        raise HTTPException(404, "Campagne introuvable.")
    return row


def _owner_text(owner: dict[str, Any]) -> str:
    territory = owner.get("territory") or {}
    codes = ", ".join(f"{k}:{c}" for k, v in territory.items() for c in v or [])
    return f"{owner.get('name') or '?'} ({codes or 'aucun territoire'})"


def _same_owner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("name") or "") == (b.get("name") or "") and accounts.same_territory(
        a.get("territory") or {}, b.get("territory") or {}
    )


def owner_fingerprint(owner: dict[str, Any]) -> str:
    """What the preview of an owner change carries to the save, so that only the change shown is saved."""
    return hashlib.sha256(json.dumps(owner, sort_keys=True).encode()).hexdigest()[:16]


def _copy_form(row, scope: accounts.Scope) -> dict[str, Any]:
    """The form of a new campaign starting from `row`, under the copier's name and territory."""
    form = form_from_spec(row.spec)
    form.update(name="", copie=str(row.id), copied_from=row.name)
    if scope.role == "collectivite":
        form.update(owner_name=scope.name, owner_territory=", ".join(
            f"{k}:{c}" for k, v in scope.territory.items() for c in v))
    return form


@router.get("/nouvelle", response_class=HTMLResponse)
def new_campaign(
    request: Request, scope: ScopeDep, engine: EngineDep, depuis: int | None = None, copie: int | None = None
):
    """An empty campaign form with sensible defaults, the form of a campaign to edit (`depuis`, its owner
    or an operator), or a copy of a campaign the user sees (`copie`, or `depuis` for one it does not own)."""
    if not scope.sees_campaigns:
        raise HTTPException(403, "Cette page n'est pas ouverte à votre rôle.")
    existing = _visible(engine, scope, depuis)
    if existing is not None and accounts.owns_campaign(scope, existing):
        return _form_page(request, scope, {**form_from_spec(existing.spec), "depuis": str(existing.id)})
    source = existing if existing is not None else _visible(engine, scope, copie)
    if source is not None:
        return _form_page(request, scope, _copy_form(source, scope))
    form = {
        "owner_name": scope.name if scope.role == "collectivite" else "",
        "triggers": ["creation"],
        "families": [],
        "step0_channel": "email",
        "step0_delay": "0d",
        "step0_template": "creation",
        "holdout": "10",
    }
    return _form_page(request, scope, form)


@router.post("/nouvelle", response_class=HTMLResponse)
async def submit_campaign(request: Request, scope: ScopeDep, engine: EngineDep, settings: SettingsDep):
    """Preview (action=apercu) or save (action=enregistrer) the campaign written in the form."""
    if not scope.sees_campaigns:
        raise HTTPException(403, "Cette page n'est pas ouverte à votre rôle.")
    raw = await request.form()
    require_csrf(request, str(raw.get("csrf") or ""))
    form: dict[str, Any] = {k: str(v) for k, v in raw.items() if k not in ("triggers", "families")}
    form["triggers"] = [str(v) for v in raw.getlist("triggers")]
    form["families"] = [str(v) for v in raw.getlist("families")]
    existing = await run_in_threadpool(_visible, engine, scope, form.get("depuis"))
    source = None if existing is not None else await run_in_threadpool(_visible, engine, scope, form.get("copie"))
    if existing is not None and not accounts.owns_campaign(scope, existing):
        raise HTTPException(403, "Seule la collectivité qui porte cette campagne peut la modifier : faites-en "
                                 "une copie à votre nom.")
    if source is not None:
        form["copied_from"] = source.name
    owner_change = None
    try:
        document = spec_from_form(form, scope)
        if existing is not None:
            # Editing keeps the campaign's name (a new name would be a new campaign) and what the form hides;
            # the owner stays unless an operator changes it.
            document = merge_into(existing.spec, {**document, "name": existing.name})
            form["name"] = existing.name
            before = existing.spec.get("owner") or {}
            if not scope.is_operator:
                document["owner"] = copy.deepcopy(before)
            elif not _same_owner(before, document["owner"]):
                owner_change = {"before": _owner_text(before), "after": _owner_text(document["owner"]),
                                "fingerprint": owner_fingerprint(document["owner"])}
        elif source is not None:
            # A copy keeps what the form hides of the original, under the copier's name and territory.
            document = {**merge_into(source.spec, document), "name": document["name"]}
        spec = load_spec(document)
    except (ValidationError, ValueError) as exc:
        return _form_page(request, scope, form, errors=validation_errors(exc), status_code=400)

    def name_taken() -> bool:
        with engine.connect() as conn:
            row = conn.execute(
                select(Campaign.__table__.c.id).where(Campaign.__table__.c.name == spec.name)
            ).first()
            return row is not None and (existing is None or row.id != existing.id)

    taken = [f"name : le nom « {spec.name} » est déjà pris, choisissez-en un autre"]
    if await run_in_threadpool(name_taken):
        return _form_page(request, scope, form, status_code=400, errors=taken)
    confirmed = owner_change is None or form.get("porteur") == owner_change["fingerprint"]
    if form.get("action") != "enregistrer" or not confirmed:
        result = await run_in_threadpool(preview, engine, spec, settings,
                                         existing.id if existing is not None else None)
        result["owner_change"] = owner_change
        result["overlaps"] = await run_in_threadpool(
            overlaps_of, engine, spec, existing.id if existing is not None else None)
        errors = [] if confirmed else [
            f"Le porteur change : {owner_change['before']} → {owner_change['after']}. Vérifiez l'aperçu, "
            "puis enregistrez à nouveau pour confirmer."
        ]
        return _form_page(request, scope, form, result=result, errors=errors, status_code=200 if confirmed else 409)
    from store.admin import CampaignNameTaken, apply_campaign

    try:
        campaign_id, _version, _what = await run_in_threadpool(
            lambda: apply_campaign(engine, spec, create_only=existing is None,
                                   campaign_id=existing.id if existing is not None else None))
    except CampaignNameTaken:
        return _form_page(request, scope, form, status_code=400, errors=taken)
    return RedirectResponse(f"/tableau/campagnes/{campaign_id}", status_code=303)
