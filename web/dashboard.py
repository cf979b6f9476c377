"""The operators' and collectivités' dashboard (server-rendered, no script): campaigns with their funnel
and uplift, breakdowns, territory chart, businesses and their timeline, call tasks, CSV exports.

Every route takes the signed-in scope and asks `store.accounts` for what it may see: an id outside the
scope is a 404 (its existence is not revealed), a page outside the role is a 403. Figures come from
`store.report.report`, the same function `declic report` prints.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from orchestrator.app import audit, calls, campaigns, privacy
from orchestrator.app.bootstrap import App
from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.labels import CAMPAIGN_STATUS, LEVELS, MESSAGE_STATUS
from orchestrator.core.stats import (
    CampaignReport,
    Table,
    Uplift,
    fr_cell,
    fr_decimal,
    fr_int,
    fr_percent,
    fr_points,
)
from segments.territory import commune, departements, epcis, regions
from store import accounts
from store.audit import user_email
from store.call_tasks import call_tasks
from store.followups import followup_clause, missed_count
from store.planning import campaign_overlaps
from store.report import (
    business_timeline,
    campaign_businesses,
    find_businesses,
    label_for,
    report,
    rollup_overlap_counts,
)
from triggers.model import ADOPTION_CATEGORIES
from web.auth import ScopeDep, csrf_token, require_csrf
from web.charts import bars_chart, funnel_chart, uplift_chart
from web.deps import AppDep, EngineDep, app_of
from web.exports import BOM, XLSX_TYPE, fr_datetime, french_csv, report_workbook, shown_columns, table_csv_fr
from web.territory_map import map_data, tile_map_svg

router = APIRouter(prefix="/tableau", include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))
STATUS_LABELS = CAMPAIGN_STATUS  # the catalogue's words (orchestrator/core/labels.py)


# --- French labels of the dashboard: the shared ones come from orchestrator/core/labels.py; these are candidates to
# move there (event sources, registry fields, audit targets, delays, territories by name, the effect in words) ---

SOURCE_LABELS = {
    "sirene": "Sirene (Insee)",
    "bodacc": "Bodacc",
    "partner": "un partenaire",
    "file": "un fichier importé",
    "demo": "la démonstration",
    "landing": "la page de la campagne",
    "cli": "la ligne de commande",
}
MESSAGE_STATUS_LABELS = MESSAGE_STATUS  # the catalogue's words
TERRITORY_LEVEL_LABELS = {**LEVELS, "communes": "commune", "departements": "département", "regions": "région"}
TARGET_LABELS = {"campaigns": "liste des campagnes", "call_tasks": "liste des appels"}
REGISTRY_FIELD_LABELS = {
    "key": "Identifiant", "name": "Nom", "metier": "Métier", "families": "Familles de métiers",
    "naf": "Codes NAF", "communes": "Communes", "epci": "Intercommunalités", "departements": "Départements",
    "channels": "Canaux", "phone": "Téléphone", "email": "Adresse e-mail", "commune": "Commune",
    "monthly_capacity": "Rendez-vous possibles par mois", "title": "Titre", "provider": "Proposée par",
    "kind": "Type", "territory": "Territoire", "format": "Format", "duration": "Durée", "hours": "Heures",
    "price": "Prix pour le dirigeant", "grant": "Aide", "url": "Adresse web",
}


def fr_delay(value: int | str | dt.timedelta | None) -> str:
    """A delay in days as words: 7 -> "7 jours", "1d" -> "1 jour", 0 -> "aussitôt"."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.timedelta):
        days = value.days
    elif isinstance(value, str):
        text = value.strip().lower().removesuffix("d").removesuffix("j").strip()
        if not text.isdigit():
            return value
        days = int(text)
    else:
        days = int(value)
    if days == 0:
        return "aussitôt"
    return f"{days} jour{'s' if days > 1 else ''}"


def territory_label(value: dict[str, list[str]] | str | None) -> str:
    """A territory by its names: {"departements": ["35"]} -> "Ille-et-Vilaine"; "epci:243500139" -> "Rennes
    Métropole" (an unknown code stays a code, with its level)."""
    if not value:
        return ""
    if isinstance(value, str):
        parsed: dict[str, list[str]] = {}
        for part in value.split(","):
            level, _, codes = part.strip().partition(":")
            parsed.setdefault(level.strip(), []).extend(c.strip() for c in codes.split() if c.strip())
        value = parsed
    names: list[str] = []
    for level, codes in value.items():
        for code in codes or []:
            level_key = level.rstrip("s") if level != "epci" else "epci"
            if level_key == "commune":
                place = commune(code)
                name = place.nom if place else None
            elif level_key == "epci":
                name = epcis()[code].nom if code in epcis() else None
            elif level_key == "departement":
                name = departements()[code].nom if code in departements() else None
            elif level_key == "region":
                name = regions()[code].nom if code in regions() else None
            else:
                name = None
            names.append(name or f"{TERRITORY_LEVEL_LABELS.get(level, level)} {code}")
    return ", ".join(names)


def effect_sentence(u: Uplift | None) -> str:
    """An effect and its interval in words: "+3,1 points, entre +0,4 et +5,8 : effet probable"."""
    if u is None:
        return "Pas encore mesurable : il faut des entreprises contactées et un groupe témoin."

    def pts(v: float) -> str:
        sign = "+" if v > 0.00005 else ("−" if v < -0.00005 else "")
        return sign + fr_decimal(abs(v) * 100)

    if u.lower > 0:
        verdict = "effet probable"
    elif u.upper < 0:
        verdict = "effet négatif probable"
    else:
        verdict = "effet incertain"
    return f"{pts(u.difference)} points, entre {pts(u.lower)} et {pts(u.upper)} : {verdict}"


@pass_context
def _local(context: Context, value: dt.datetime | None) -> str:
    """The `local` filter: a moment in the App's zone (the page's request leads to the App)."""
    return fr_datetime(value, app_of(context["request"]).zone)


pages.env.globals.update(fr_cell=fr_cell, fr_int=fr_int, fr_percent=fr_percent, fr_points=fr_points,
                         shown_columns=shown_columns, field_label=lambda c: REGISTRY_FIELD_LABELS.get(c, c),
                         territory_label=territory_label, fr_delay=fr_delay, effect_sentence=effect_sentence)
pages.env.filters["local"] = _local


def render(
    request: Request, scope: accounts.Scope, name: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """A dashboard page with the user, the CSRF token and the role's menu."""
    return pages.TemplateResponse(
        request,
        name,
        {
            "scope": scope,
            "csrf": csrf_token(request),
            "status_labels": STATUS_LABELS,
            "role_label": accounts.ROLE_LABELS[scope.role],
            "role_labels": accounts.ROLE_LABELS,
            "target_labels": TARGET_LABELS,
            **values,
        },
        status_code=status_code,
    )


def csv_response(text: str, filename: str) -> Response:
    """A CSV download for a French spreadsheet (UTF-8 with a byte-order mark, so the accents read right)."""
    return Response(
        BOM + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def rows_csv(columns: list[tuple[str, str]], rows: list[dict[str, Any]], zone: ZoneInfo) -> str:
    """Rows of plain values as a French CSV (`;`, French headers, dates as "4 déc. 2026, 22 h 59" in `zone`)."""
    return french_csv(columns, rows, zone)


def logged_csv(declic: App, scope: accounts.Scope, text: str, filename: str, target: str) -> Response:
    """A CSV download, written in the audit trail (who exported what)."""
    audit.record_access(declic, scope, "export_csv", target, {"file": filename})
    return csv_response(text, filename)


def _need_campaigns(scope: accounts.Scope) -> None:
    if not scope.sees_campaigns:
        raise HTTPException(403, "Cette page n'est pas ouverte à votre rôle.")


def _campaign_or_404(engine, scope: accounts.Scope, campaign_id: int):
    _need_campaigns(scope)
    with engine.connect() as conn:
        row = accounts.campaign(conn, scope, campaign_id)
    if row is None:
        raise HTTPException(404, "Campagne introuvable.")
    return row


# --- campaigns ---

SUMMARY_COLUMNS = [
    ("name", "Campagne"),
    ("title", "Titre"),
    ("owner", "Porteur"),
    ("status", "État"),
    ("targeted", "Ciblées"),
    ("contacted", "Contactées"),
    ("converted", "Converties"),
    ("holdout", "Témoin"),
    ("holdout_converted", "Témoin converties"),
    ("uplift", "Effet (points)"),
    ("lower", "Borne basse"),
    ("upper", "Borne haute"),
]


def _summaries(engine, scope: accounts.Scope) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = accounts.campaigns(conn, scope)
    out = []
    for row in rows:
        r = report(engine, row)
        t, h, u = r.funnel["treatment"], r.funnel["holdout"], r.uplift
        out.append(
            {
                "id": row.id,
                "name": row.name,
                "title": r.title,
                "owner": row.owner,
                "status": STATUS_LABELS.get(row.status, row.status),
                "targeted": t.targeted,
                "contacted": t.contacted,
                "converted": t.converted,
                "holdout": h.targeted,
                "holdout_converted": h.converted,
                "uplift": u.difference if u else None,
                "lower": u.lower if u else None,
                "upper": u.upper if u else None,
            }
        )
    return out


@router.get("", response_class=HTMLResponse)
async def home(request: Request, scope: ScopeDep, declic: AppDep):
    """The campaigns the user sees (an ambassador goes to its call list)."""
    if scope.role == "ambassador":
        return RedirectResponse("/tableau/appels", status_code=303)
    summaries = await run_in_threadpool(_summaries, declic.engine, scope)
    missed = await run_in_threadpool(_missed_followups, declic) if scope.is_operator else None
    return render(request, scope, "dash_campaigns.html", campaigns=summaries, columns=SUMMARY_COLUMNS,
                  missed_followups=missed)


def _missed_followups(declic: App) -> int:
    """The follow-ups missed everywhere (still open 7 days after their date): the operator's to chase."""
    with declic.engine.connect() as conn:
        return missed_count(conn, followup_clause("operator", None, None), today=declic.today())


@router.get("/campagnes.csv")
async def campaigns_csv(scope: ScopeDep, declic: AppDep):
    """The campaign list as CSV."""
    _need_campaigns(scope)
    engine = declic.engine
    summaries = await run_in_threadpool(_summaries, engine, scope)
    return await run_in_threadpool(logged_csv, declic, scope, rows_csv(SUMMARY_COLUMNS, summaries, declic.zone),
                                   "campagnes.csv", "campaigns")


TERRITORY_LEVELS = {
    "commune": ("by_commune_code", "commune"),
    "epci": ("by_epci_code", "intercommunalité"),
    "departement": ("by_departement_code", "département"),
}
# The breakdowns shown folded under "Voir le détail", their first rows on the page and the rest in the CSV.
DETAIL_ROWS = 10


def territory_chart(r: CampaignReport, level: str) -> str:
    """Conversion rate of the contacted businesses by territory (largest groups first)."""
    key, label = TERRITORY_LEVELS[level]
    rows = sorted(r.table(key).rows, key=lambda x: -x["targeted"])
    data = [
        (x["label"] or x["value"], x["converted"] / x["targeted"] if x["targeted"] else None, x["targeted"])
        for x in rows
        if x["targeted"]
    ]
    return bars_chart(data, f"Taux de conversion par {label}", "territory-title")


def trades_chart(r: CampaignReport) -> str:
    """Conversion rate by trade family (largest first), the trades of the campaign at a glance."""
    rows = sorted(r.table("by_metier_family").rows, key=lambda x: (-x["targeted"], x["label"]))
    data = [(x["label"], x["conversion_rate"], x["targeted"]) for x in rows if x["targeted"]]
    return bars_chart(data, "Taux de conversion par famille de métiers", "trades-title")


def top_rows(table: Table, n: int = DETAIL_ROWS) -> Table:
    """The first `n` rows of a breakdown, largest groups first (the CSV keeps them all)."""
    rows = sorted(table.rows, key=lambda x: (-(x.get("targeted") or 0), str(x.get("label") or "")))
    return Table(table.key, table.title, table.columns, rows[:n], table.kinds)


def glance(r: CampaignReport) -> dict[str, Any]:
    """The figures at the top of the page, and how the summary meets the funnel: the reach counts both groups,
    the funnel's "ciblées" counts the businesses to contact (the control group is counted apart)."""
    t, h = r.funnel["treatment"], r.funnel["holdout"]
    covered = sum(x["businesses"] for x in r.table("covered").rows) if any(
        tb.key == "covered" for tb in r.tables) else 0
    return {
        "reach": t.targeted + h.targeted,
        "to_contact": t.targeted,
        "holdout": h.targeted,
        "contacted": t.contacted,
        "contacted_share": t.contacted / t.targeted if t.targeted else None,
        "converted": t.contacted_converted,
        "converted_rate": t.contacted_converted / t.contacted if t.contacted else None,
        "covered": covered,
        "effect": effect_sentence(r.uplift),
        "effect_class": "sure" if r.uplift and r.uplift.significant else "unsure",
    }


@router.get("/campagnes/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    request: Request, campaign_id: int, scope: ScopeDep, declic: AppDep, territoire: str = "commune"
):
    """One campaign at a glance (reach, contacted, converted, effect in words, a map of its territory, its
    trades), then the funnel and effect, the other sections, and the breakdowns folded with their top rows."""
    engine = declic.engine
    row = await run_in_threadpool(_campaign_or_404, engine, scope, campaign_id)
    r = await run_in_threadpool(report, engine, row)
    overlaps = await run_in_threadpool(_overlaps, declic, row)
    level = territoire if territoire in TERRITORY_LEVELS else "commune"
    uplifts = [("Contactés / témoin", r.uplift), ("Tous les ciblés / témoin", r.uplift_itt)]
    uplifts += [(f"Variante {v.variant} / {r.variants[0].variant}", v.vs_reference) for v in r.variants[1:]]
    tiles = await run_in_threadpool(map_data, r, row.spec)
    map_title = (f"Carte du territoire de la campagne : taux de conversion par {tiles.level_label} "
                 "(une case par " + tiles.level_label + ", par ordre alphabétique)")
    return render(
        request,
        scope,
        "dash_campaign.html",
        campaign=row,
        report=r,
        as_of=fr_datetime(r.as_of, declic.zone) if r.as_of else "",
        glance=glance(r),
        tiles=tiles,
        map_svg=tile_map_svg(tiles, map_title),
        trades_svg=trades_chart(r),
        breakdowns=[(t, top_rows(t)) for t in r.tables if t.key.startswith("by_")],
        not_for_me_tables=[t for t in r.tables if t.key.startswith("not_for_me_")],
        not_for_me_total=sum(x["businesses"] for t in r.tables if t.key == "not_for_me_by_family" for x in t.rows),
        detail_rows=DETAIL_ROWS,
        funnel_svg=funnel_chart(r),
        uplift_svg=uplift_chart(uplifts, "Effet sur la conversion, avec intervalle de confiance à 95 %"),
        adoption_svg=uplift_chart(
            [("Contactés / témoin", r.adoption_uplift), ("Tous les ciblés / témoin", r.adoption_uplift_itt)],
            "Effet sur l'adoption, avec intervalle de confiance à 95 %",
            "adoption-title",
        ),
        territory_svg=territory_chart(r, level),
        level=level,
        levels=TERRITORY_LEVELS,
        overlaps=overlaps,
        may_edit=accounts.owns_campaign(scope, row),
    )


def _overlaps(declic: App, row) -> list[dict[str, Any]]:
    """The other campaigns overlapping this one's segment, the arbitration outcome and the businesses covered."""
    try:
        spec = CampaignSpec.model_validate(row.spec)
    except ValueError:
        return []
    with declic.engine.connect() as conn:
        # Counted by the last rollup while neither campaign changed since (one count is a scan of both segments).
        counted = rollup_overlap_counts(conn, row.id, row.version)
        return campaign_overlaps(conn, spec, row.id, declic.today(), counted=counted)


@router.get("/campagnes/{campaign_id}/export/{table_key}.csv")
async def campaign_table_csv(campaign_id: int, table_key: str, scope: ScopeDep, declic: AppDep):
    """One table of a campaign's report as a French CSV (the same figures as `declic report --table KEY`)."""
    engine = declic.engine
    row = await run_in_threadpool(_campaign_or_404, engine, scope, campaign_id)
    r = await run_in_threadpool(report, engine, row)
    table: Table | None = next((t for t in r.tables if t.key == table_key), None)
    if table is None:
        raise HTTPException(404, "Tableau inconnu.")
    return await run_in_threadpool(logged_csv, declic, scope, table_csv_fr(table, declic.zone),
                                   f"{row.name}-{table_key}.csv", f"campaign:{row.id}")


def workbook_summary(row, r: CampaignReport, zone: ZoneInfo) -> list[tuple[str, Any]]:
    """The first sheet of the workbook: the campaign, its owner, state, the date of its figures, the glance."""
    g = glance(r)
    return [
        ("Nom", row.name),
        ("Porteur", row.owner),
        ("État", STATUS_LABELS.get(row.status, row.status)),
        ("Chiffres", f"arrêtés au {fr_datetime(r.as_of, zone)}" if r.source == "rollup" else "calculés à l'instant"),
        ("Portée (entreprises ciblées, groupe témoin compris)", g["reach"]),
        ("Dont à contacter", g["to_contact"]),
        ("Dont groupe témoin", g["holdout"]),
        ("Contactées", g["contacted"]),
        ("Converties parmi les contactées", g["converted"]),
        ("Effet sur la conversion (contactées / témoin)", g["effect"]),
    ]


@router.get("/campagnes/{campaign_id}/rapport.xlsx")
async def campaign_workbook(campaign_id: int, scope: ScopeDep, declic: AppDep):
    """The whole report of a campaign as one Excel workbook (one sheet per table, the figures of `declic report`)."""
    engine = declic.engine
    row = await run_in_threadpool(_campaign_or_404, engine, scope, campaign_id)
    r = await run_in_threadpool(report, engine, row)
    body = await run_in_threadpool(lambda: report_workbook(r, summary=workbook_summary(row, r, declic.zone)))
    filename = f"{row.name}-rapport.xlsx"
    await run_in_threadpool(audit.record_access, declic, scope, "export_xlsx", f"campaign:{row.id}", {"file": filename})
    return Response(body, media_type=XLSX_TYPE, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


BUSINESS_COLUMNS = [
    ("name", "Entreprise"),
    ("siret", "SIRET"),
    ("commune", "Commune"),
    ("family", "Métier"),
    ("arm", "Groupe"),
    ("variant", "Variante"),
    ("trigger", "Déclencheur"),
    ("enrolled_at", "Inscrite le"),
    ("messages", "Messages"),
    ("contacted", "Contactée"),
    ("clicked", "A cliqué"),
    ("responded", "A répondu"),
    ("converted", "Convertie"),
]


@router.get("/campagnes/{campaign_id}/entreprises", response_class=HTMLResponse)
async def campaign_businesses_page(request: Request, campaign_id: int, scope: ScopeDep, engine: EngineDep):
    """The businesses of a campaign (latest 500), each linked to its timeline."""
    row = await run_in_threadpool(_campaign_or_404, engine, scope, campaign_id)

    def load():
        with engine.connect() as conn:
            return campaign_businesses(conn, row.id)

    items = await run_in_threadpool(load)
    return render(request, scope, "dash_businesses.html", campaign=row, items=items, columns=BUSINESS_COLUMNS)


@router.get("/campagnes/{campaign_id}/entreprises.csv")
async def campaign_businesses_csv(campaign_id: int, scope: ScopeDep, declic: AppDep):
    """Every business of a campaign as CSV."""
    engine = declic.engine
    row = await run_in_threadpool(_campaign_or_404, engine, scope, campaign_id)

    def load():
        with engine.connect() as conn:
            return campaign_businesses(conn, row.id, limit=None)

    text = rows_csv(BUSINESS_COLUMNS, await run_in_threadpool(load), declic.zone)
    return await run_in_threadpool(logged_csv, declic, scope, text, f"{row.name}-entreprises.csv",
                                   f"campaign:{row.id}")


@router.post("/campagnes/{campaign_id}/statut")
async def campaign_status(
    request: Request,
    campaign_id: int,
    scope: ScopeDep,
    declic: AppDep,
    status: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
):
    """Pause, resume or end a campaign."""
    require_csrf(request, csrf)
    row = await run_in_threadpool(_campaign_or_404, declic.engine, scope, campaign_id)
    if status not in STATUS_LABELS:
        raise HTTPException(400, "État inconnu.")
    await run_in_threadpool(campaigns.set_status, declic, row.name, status)
    return RedirectResponse(f"/tableau/campagnes/{row.id}", status_code=303)


@router.post("/campagnes/{campaign_id}/recalcul")
async def campaign_refresh(
    request: Request, campaign_id: int, scope: ScopeDep, declic: AppDep, csrf: Annotated[str, Form()] = ""
):
    """Recompute this campaign's figures now instead of waiting for the night."""
    require_csrf(request, csrf)
    row = await run_in_threadpool(_campaign_or_404, declic.engine, scope, campaign_id)
    await run_in_threadpool(campaigns.refresh_figures, declic, [row.id])
    return RedirectResponse(f"/tableau/campagnes/{row.id}", status_code=303)


# --- a business ---

TIMELINE_COLUMNS = [("at", "Date"), ("what", "Quoi"), ("detail", "Détail"), ("extra", "Précision")]


def _timeline(engine, scope: accounts.Scope, business_id: int):
    _need_campaigns(scope)
    with engine.connect() as conn:
        biz = accounts.business(conn, scope, business_id)
        if biz is None:
            raise HTTPException(404, "Entreprise introuvable.")
        return biz, [_timeline_item(x) for x in business_timeline(conn, business_id,
                                                                  accounts.visible_campaign_ids(conn, scope))]


def _timeline_item(item: dict[str, Any]) -> dict[str, Any]:
    """A timeline row in words: an event's source by name ("source : un partenaire"), a message's state in
    French (a state the store does not name yet, such as "handed_over", is named here)."""
    extra = item.get("extra") or ""
    if item.get("what") == "événement" and ", source " in extra:
        head, _, source = extra.rpartition(", source ")
        extra = f"{head}, source : {SOURCE_LABELS.get(source, source)}"
    elif item.get("what") == "message" and extra in MESSAGE_STATUS_LABELS:
        extra = MESSAGE_STATUS_LABELS[extra]
    return {**item, "extra": extra}


@router.get("/entreprises", response_class=HTMLResponse)
async def business_search(request: Request, scope: ScopeDep, engine: EngineDep, q: str = ""):
    """Find a business of the user's territory by name or SIRET."""
    _need_campaigns(scope)
    def load():
        with engine.connect() as conn:
            return find_businesses(conn, accounts.business_clause(scope), q[:100])

    items = await run_in_threadpool(load)
    return render(request, scope, "dash_search.html", q=q, items=items)


@router.get("/entreprises/{business_id}", response_class=HTMLResponse)
async def business_page(request: Request, business_id: int, scope: ScopeDep, declic: AppDep):
    """A business's timeline: events, enrollments, messages, reactions, calls."""
    biz, items = await run_in_threadpool(_timeline, declic.engine, scope, business_id)
    await run_in_threadpool(audit.record_access, declic, scope, "view_business", f"business:{biz.id}")
    return render(
        request,
        scope,
        "dash_business.html",
        business=biz,
        items=items,
        commune=label_for("commune_code", biz.commune_code),
        family=label_for("metier_family", biz.metier_family),
    )


@router.get("/entreprises/{business_id}/historique.csv")
async def business_csv(business_id: int, scope: ScopeDep, declic: AppDep):
    """A business's timeline as CSV."""
    engine = declic.engine
    biz, items = await run_in_threadpool(_timeline, engine, scope, business_id)
    return await run_in_threadpool(logged_csv, declic, scope, rows_csv(TIMELINE_COLUMNS, items, declic.zone),
                                   f"entreprise-{biz.siret}.csv", f"business:{biz.id}")


# --- personal data (issue 15): the operator's export of a business, and the audit trail ---


def _need_operator(scope: accounts.Scope) -> None:
    if not scope.is_operator:
        raise HTTPException(403, "Cette page est réservée aux opérateurs.")


@router.get("/entreprises/{business_id}/donnees.json")
async def business_privacy_json(business_id: int, scope: ScopeDep, declic: AppDep):
    """Everything held about a business (right of access), as JSON; operators only, logged."""
    return await _privacy_export(business_id, "json", scope, declic)


@router.get("/entreprises/{business_id}/donnees.pdf")
async def business_privacy_pdf(business_id: int, scope: ScopeDep, declic: AppDep):
    """The same as a short French PDF; operators only, logged."""
    return await _privacy_export(business_id, "pdf", scope, declic)


async def _privacy_export(business_id: int, fmt: str, scope: accounts.Scope, declic: App) -> Response:
    _need_operator(scope)
    def build() -> dict[str, Any]:
        with declic.engine.connect() as conn:
            biz = accounts.business(conn, scope, business_id)
            email = user_email(conn, scope.user_id)
        if biz is None:
            raise HTTPException(404, "Entreprise introuvable.")
        try:
            return privacy.export_business(declic, biz.siret, actor=email, role=scope.role, territory=scope.territory)
        except privacy.PrivacyError as exc:  # an erased business: its SIRET is gone
            raise HTTPException(404, "Entreprise introuvable.") from exc

    data = await run_in_threadpool(build)
    name = f"donnees-{data['siret']}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "json":
        return Response(privacy.export_json(data), media_type="application/json; charset=utf-8", headers=headers)
    return Response(await run_in_threadpool(privacy.export_pdf, data), media_type="application/pdf",
                    headers=headers)


@router.get("/journal", response_class=HTMLResponse)
async def audit_page(request: Request, scope: ScopeDep, declic: AppDep, depuis: str = "", utilisateur: str = ""):
    """The audit trail of personal data: views of businesses, exports, erasures, purges (operators only)."""
    _need_operator(scope)
    since = None
    if depuis:
        try:
            since = dt.datetime.combine(dt.date.fromisoformat(depuis[:10]), dt.time(), declic.zone)
        except ValueError:
            since = None
    rows = await run_in_threadpool(lambda: privacy.audit_entries(declic, since=since, user=utilisateur or None,
                                                                 limit=500))
    return render(request, scope, "dash_audit.html", rows=rows, depuis=depuis, utilisateur=utilisateur)


# --- call tasks ---

TASK_COLUMNS = [
    ("business", "Entreprise"),
    ("commune", "Commune"),
    ("phone", "Téléphone"),
    ("due_at", "À appeler à partir du"),
    ("status", "État"),
    ("attempts", "Essais"),
    ("note", "Note"),
    ("assignee", "Pour"),
]


def _tasks(engine, scope: accounts.Scope, open_only: bool, limit: int | None):
    with engine.connect() as conn:
        return call_tasks(conn, accounts.task_clause(conn, scope), open_only=open_only, limit=limit)


@router.get("/appels", response_class=HTMLResponse)
async def tasks_page(request: Request, scope: ScopeDep, engine: EngineDep, tout: bool = False):
    """The call tasks the user may see (an ambassador: its own), open ones first."""
    items = await run_in_threadpool(_tasks, engine, scope, not tout, 500)
    return render(request, scope, "dash_tasks.html", items=items, show_all=tout, columns=TASK_COLUMNS,
                  adoption_categories=ADOPTION_CATEGORIES)


@router.get("/appels.csv")
async def tasks_csv(scope: ScopeDep, declic: AppDep):
    """Every call task the user may see, as CSV."""
    engine = declic.engine
    text = rows_csv(TASK_COLUMNS, await run_in_threadpool(_tasks, engine, scope, False, None), declic.zone)
    return await run_in_threadpool(logged_csv, declic, scope, text, "appels.csv", "call_tasks")


@router.post("/appels/{task_id}")
async def task_outcome(
    request: Request,
    task_id: int,
    scope: ScopeDep,
    declic: AppDep,
    outcome: Annotated[str, Form()] = "",
    met: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    adopted: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form()] = "",
):
    """Record a call: reached, refused or no answer; a meeting agreed counts as `ambassador_met`; "a commencé à
    utiliser ..." (`adopted`, a category code) counts as a `tool_adopted` of that category."""
    require_csrf(request, csrf)
    if outcome not in calls.OUTCOMES:
        raise HTTPException(400, "Résultat d'appel inconnu.")
    if adopted and (adopted not in ADOPTION_CATEGORIES or outcome != "done"):
        raise HTTPException(400, "Type d'outil inconnu, ou personne jointe manquante.")
    recorded = await run_in_threadpool(
        lambda: calls.record_call(declic, scope, task_id, outcome=outcome, met=outcome == "done" and met == "oui",
                                  note=note.strip() or None, adopted=adopted or None))
    if not recorded:
        raise HTTPException(404, "Appel introuvable.")
    return RedirectResponse("/tableau/appels", status_code=303)
