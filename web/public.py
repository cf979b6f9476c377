"""Routes the business owner reaches from a message: click redirect, landing page and its forms
(callback, "not for me", self-diagnostic), unsubscribe. No JavaScript, no session: each form carries a
CSRF token signed for the message of the page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from orchestrator.app import answers, callbacks
from orchestrator.app.bootstrap import App
from orchestrator.app.callbacks import SLOTS
from orchestrator.app.settings import Settings
from orchestrator.core.campaign_spec import NOT_FOR_ME_REASONS as REASONS
from orchestrator.core.campaign_spec import PAUSE_MONTHS
from orchestrator.core.diagnostic import questions as diagnostic_questions
from orchestrator.core.links import TokenError, make_token, read_token
from orchestrator.core.phones import InvalidNumber, normalise_french_number
from templates.render import tel_href
from templates.wording import DEFAULT_REASON, ORIGIN_REASONS, origin_words
from triggers.model import ADOPTION_CATEGORIES
from web.csrf import check_csrf, make_csrf
from web.deps import AppDep, SettingsDep, app_of
from web.diagnostic import MISSING, candidate_offers, diagnose, page_context, result_context, stored_data

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))
OFFER_FORMATS = {"sur_place": "sur place", "a_distance": "à distance", "mixte": "sur place ou à distance"}
pages.env.filters["offer_format"] = lambda value: OFFER_FORMATS.get(value, value)
pages.env.filters["tel"] = tel_href
# The landing page offers the self-diagnostic's questions itself (web/pages/_diagnostic_form.html).
pages.env.globals["diagnostic_questions"] = diagnostic_questions

# The fixed list of reasons (`orchestrator.core.campaign_spec`): what each does is the campaign's `not_for_me` section.
NOT_FOR_ME_REASONS = REASONS


def _error(request: Request, reason: str, status: int = 404) -> HTMLResponse:
    return pages.TemplateResponse(request, "error.html", {"reason": reason}, status_code=status)


def _subject(message_id: int) -> str:
    return f"landing:{message_id}"


def _landing_message(declic: App, token: str):
    """(message id, row) for a valid landing token whose message has a context, else raises TokenError."""
    message_id = read_token(declic.settings.resolved_secret, "m", token, now=declic.now())
    msg = answers.message(declic, message_id)
    if msg is None or not msg.context:
        raise TokenError("message inconnu")
    return message_id, msg


EXPIRED_FORM = "ce formulaire a expiré : rechargez la page et recommencez"


class LandingRefused(Exception):
    """A form of the owner's page refused before its route runs: an unknown link (404) or a CSRF token that is not
    this message's (403). Answered with the French error page (`web.app`)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def posted_message(token: str, declic: AppDep, csrf: Annotated[str, Form()] = ""):
    """The one preamble of every form posted from the owner's page: the message of the link in the URL, if the
    form's CSRF token was made for it; LandingRefused otherwise."""
    try:
        message_id, msg = _landing_message(declic, token)
    except TokenError as exc:
        raise LandingRefused(str(exc), 404) from exc
    if not check_csrf(declic.settings.resolved_secret, _subject(message_id), csrf):
        raise LandingRefused(EXPIRED_FORM, 403)
    return msg


PostedMessage = Annotated[Any, Depends(posted_message)]


def refused(request: Request, exc: LandingRefused) -> HTMLResponse:
    """The page a refused landing form gets."""
    return _error(request, exc.reason, exc.status)


def _landing(
    request: Request, settings: Settings, token: str, msg, *, status: int = 200, **extra
) -> HTMLResponse:
    ctx = msg.context
    values = {
        "token": token,
        "business": ctx.get("business") or {},
        "ambassador": ctx.get("ambassador") or {},
        "offers": ctx.get("offers") or [],
        "sender": ctx.get("sender") or {},
        # tap-to-call links (E.164), the peer's shown first on phones
        "peer_tel": tel_href(p) if (p := (ctx.get("ambassador") or {}).get("phone")) else None,
        "sender_tel": tel_href(p) if (p := (ctx.get("sender") or {}).get("phone")) else None,
        "csrf": make_csrf(settings.resolved_secret, _subject(msg.id)),
        "unsubscribe": f"/u/{make_token(settings.resolved_secret, 'u', msg.id, now=app_of(request).now())}",
        "slots": {k: v[0] for k, v in SLOTS.items()},
        "reasons": NOT_FOR_ME_REASONS,
        "pause_months": PAUSE_MONTHS,
        "adoption_categories": ADOPTION_CATEGORIES,
        "form": {},
        "errors": {},
        "done": None,
        "origin": _origin(ctx, msg.channel),
        "privacy": _privacy(request, settings, msg),
    }
    values.update(extra)
    return pages.TemplateResponse(request, "landing.html", values, status_code=status)


def _origin(ctx: dict, channel: str | None) -> dict:
    """Why this business got the message and where its data came from (GDPR art. 14), in words."""
    words = origin_words(ctx.get("origin"))
    trigger = (ctx.get("trigger") or {}).get("type") or ""
    return {"reason": ORIGIN_REASONS.get(trigger, DEFAULT_REASON), "known": words["known"],
            "sources": [o["long"] for o in words.get(channel or "email", words["email"])]}


def _privacy(request: Request, settings: Settings, msg) -> dict:
    """The privacy notice of the landing page, from the campaign's spec: who is responsible (the owner, with its
    co-owners), the contact for the rights (`privacy_contact`, else the sender's e-mail), the retention period
    (DECLIC_RETENTION_CONTACT_DAYS). A message whose campaign spec cannot be read falls back on its context."""
    ctx = msg.context or {}
    sender, campaign = ctx.get("sender") or {}, ctx.get("campaign") or {}
    spec = answers.spec_of(app_of(request), msg.campaign_id)
    owners = [o.name for o in spec.owners()] if spec else (campaign.get("owners") or [sender.get("name")])
    days = settings.retention_contact_days
    return {
        "controller": owners[0] or sender.get("name"),
        "co_controllers": [o for o in owners[1:] if o],
        "contact": (spec.privacy_contact or spec.sender.email) if spec else sender.get("email"),
        "address": spec.sender.address if spec else sender.get("address"),
        "retention": f"{days // 365} ans" if days % 365 == 0 and days >= 730 else f"{days} jours",
    }


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str, settings: SettingsDep) -> HTMLResponse:
    """Confirmation page: nothing changes on GET (mail scanners follow links)."""
    try:
        read_token(settings.resolved_secret, "u", token, now=app_of(request).now())
    except TokenError as exc:
        return _error(request, str(exc))
    return pages.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": False})


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, token: str, declic: AppDep) -> HTMLResponse:
    """Record the opt-out (one click, RFC 8058: mail clients POST `List-Unsubscribe=One-Click`).

    No CSRF token here on purpose: the signed token in the URL is the proof, and RFC 8058 clients post
    without a page. The worst a forged request can do is what the link's owner asked for.
    """
    try:
        message_id = read_token(declic.settings.resolved_secret, "u", token, now=declic.now())
    except TokenError as exc:
        return _error(request, str(exc))
    if not answers.unsubscribe(declic, message_id):
        return _error(request, "message inconnu")
    return pages.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": True})


@router.get("/r/{token}")
def click(request: Request, token: str, declic: AppDep):
    """Record a click, then go to the landing page of that message."""
    secret, now = declic.settings.resolved_secret, declic.now()
    try:
        message_id = read_token(secret, "r", token, now=now)
    except TokenError as exc:
        return _error(request, str(exc))
    if not answers.click(declic, message_id):
        return _error(request, "message inconnu")
    return RedirectResponse(f"/m/{make_token(secret, 'm', message_id, now=now)}", status_code=303)


@router.get("/m/{token}", response_class=HTMLResponse)
def landing(request: Request, token: str, declic: AppDep) -> HTMLResponse:
    """The owner's page: the ambassador and the offers of that message, and the ways to answer."""
    try:
        _, msg = _landing_message(declic, token)
    except TokenError as exc:
        return _error(request, str(exc))
    return _landing(request, declic.settings, token, msg)


@router.post("/m/{token}/rappel", response_class=HTMLResponse)
def ask_callback(
    request: Request,
    token: str,
    settings: SettingsDep,
    declic: AppDep,
    msg: PostedMessage,
    phone: Annotated[str, Form()] = "",
    slot: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    sms: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """ "Rappelez-moi": a call task for the ambassador, who is told by e-mail (queued with the task, sent by the
    dispatcher); the box "J'accepte aussi de recevoir des SMS" (unticked by default) records an SMS consent to the
    campaign's owner apart."""
    errors: dict[str, str] = {}
    try:
        e164 = normalise_french_number(phone)
    except InvalidNumber as exc:
        errors["phone"] = (
            "Indiquez un numéro français (métropole ou outre-mer). Exemple : 06 12 34 56 78."
            if exc.reason.startswith("numéro étranger")
            else "Ce numéro ne semble pas valide. Exemple : 06 12 34 56 78."
        )
    if slot not in SLOTS:
        errors["slot"] = "Choisissez un moment."
    if errors:
        return _landing(
            request,
            settings,
            token,
            msg,
            status=400,
            errors=errors,
            form={"phone": phone, "slot": slot, "note": note, "sms": bool(sms)},
        )
    stored = callbacks.ask_callback(declic, msg, phone=e164, slot=slot, note=note.strip(), sms=bool(sms),
                                    shown_phone=phone.strip())
    if stored.again:
        # One callback per business a day: the ambassador already has the task and the e-mail.
        return _landing(request, settings, token, msg, done="rappel_deja")
    return _landing(request, settings, token, msg, done="rappel", due_label=SLOTS[slot][0])


@router.post("/m/{token}/plus-d-appel", response_class=HTMLResponse)
def stop_calls(request: Request, token: str, declic: AppDep, msg: PostedMessage) -> HTMLResponse:
    """ "Ne plus m'appeler": one click withdraws every call and SMS consent of the business."""
    answers.stop_calls(declic, msg, source=f"landing:{msg.id}")
    return _landing(request, declic.settings, token, msg, done="plus_d_appel")


@router.post("/m/{token}/pas-pour-moi", response_class=HTMLResponse)
def not_for_me(
    request: Request,
    token: str,
    settings: SettingsDep,
    declic: AppDep,
    msg: PostedMessage,
    reason: Annotated[str, Form()] = "",
    months: Annotated[str, Form(max_length=3)] = "",
    detail: Annotated[str, Form(max_length=1000)] = "",
) -> HTMLResponse:
    """ "Ce n'est pas pour moi": the reason is kept and its campaign's action applied (`store.not_for_me`): a pause
    of the months chosen, free offers only, a peer's testimony, an ambassador's call, the handover track, or the
    end of the campaign with one question about the tool used (unsubscribe is separate)."""
    if reason not in NOT_FOR_ME_REASONS:
        return _landing(
            request,
            settings,
            token,
            msg,
            status=400,
            errors={"reason": "Choisissez une raison."},
            form={"detail": detail, "months": months},
        )
    chosen = int(months) if months.isdigit() and int(months) in PAUSE_MONTHS else None
    answered = answers.not_for_me(declic, msg, reason, detail=detail, months=chosen)
    until = answered.paused_until.astimezone(declic.zone) if answered.paused_until else None
    return _landing(request, settings, token, msg, done="pas_pour_moi", answer=answered.action,
                    paused_until=f"{until:%d/%m/%Y}" if until else None)


@router.post("/m/{token}/outil", response_class=HTMLResponse)
def tool_answer(
    request: Request,
    token: str,
    settings: SettingsDep,
    declic: AppDep,
    msg: PostedMessage,
    category: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """ "Déjà équipé": the one adoption question, "quel outil utilisez-vous ?", recorded as a `tool_adopted`."""
    if category not in ADOPTION_CATEGORIES:
        return _landing(request, settings, token, msg, status=400, done="pas_pour_moi", answer="end_and_ask",
                        errors={"category": "Choisissez ce que vous utilisez."})
    answers.tool_answer(declic, msg, category)
    return _landing(request, settings, token, msg, done="outil")


@router.get("/m/{token}/diagnostic", response_class=HTMLResponse)
def diagnostic_page(request: Request, token: str, declic: AppDep, source: str = "landing") -> HTMLResponse:
    """The five questions of the self-diagnostic (skills and appetite), the last one in the words of the trade."""
    try:
        message_id, msg = _landing_message(declic, token)
    except TokenError as exc:
        return _error(request, str(exc))
    csrf = make_csrf(declic.settings.resolved_secret, _subject(message_id))
    return pages.TemplateResponse(request, "diagnostic.html", page_context(
        msg.context, token, csrf, source=source if source in DIAGNOSTIC_SOURCES else "landing"))


DIAGNOSTIC_SOURCES = ("landing", "short")


@router.post("/m/{token}/diagnostic", response_class=HTMLResponse)
async def diagnostic_answer(request: Request, token: str, declic: AppDep, msg: PostedMessage) -> HTMLResponse:
    """Store the versioned answers with both levels and the maturity, count the conversion, show ONE next step
    (an offer with its price, or a free call) and the person who helps."""
    form = await request.form()  # the answers: several values per question (the CSRF token was read already)
    source = str(form.get("source") or "")
    source = source if source in DIAGNOSTIC_SOURCES else "landing"
    csrf = make_csrf(declic.settings.resolved_secret, _subject(msg.id))

    def offers() -> list[dict]:
        with declic.engine.connect() as conn:
            return candidate_offers(conn, msg)

    given, lv, step, missing = diagnose(form, msg.context, await run_in_threadpool(offers))
    if given is None:
        context = page_context(msg.context, token, csrf, posted={k: form.getlist(k) for k in form.keys()},
                               error=MISSING, missing=missing, source=source)
        return pages.TemplateResponse(request, "diagnostic.html", context, status_code=400)
    family = (msg.context.get("business") or {}).get("family")
    await run_in_threadpool(lambda: answers.diagnostic(declic, msg, score=lv.score,
                                                       data=stored_data(given, lv, step, family, source)))
    context = page_context(msg.context, token, csrf, result=result_context(lv, step), source=source)
    return pages.TemplateResponse(request, "diagnostic.html", context)
