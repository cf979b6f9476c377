"""The territory barometer page (issue 16, point 6): `/tableau/barometre?territoire=departement:35` and its CSV.

Scoped like the rest of the dashboard: an operator sees any territory, a collectivité its own territory or a part
of it (403 otherwise), other roles nothing. The figures are `store.barometer.barometer`'s, the same as
`declic barometre`.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from orchestrator.core.barometer import MATURITY_LEVELS, Barometer, barometer_csv
from store import accounts
from store.barometer import barometer
from web.auth import ScopeDep
from web.charts import bars_chart
from web.dashboard import _need_campaigns, logged_csv, render
from web.deps import AppDep, EngineDep
from web.territory_map import MapData, Tile, _bounds, tile_map_svg

router = APIRouter(prefix="/tableau", include_in_schema=False)


def _territory(scope: accounts.Scope, territoire: str) -> tuple[dict[str, list[str]], str] | None:
    """The territory asked for (a collectivité's own by default) and its text; None when an operator asked
    nothing yet. 400 when unreadable, 403 outside a collectivité's territory."""
    _need_campaigns(scope)
    text = territoire.strip()
    if not text:
        if scope.is_operator:
            return None
        place = {k: list(v) for k, v in scope.territory.items() if v}
        text = ",".join(f"{k}:{c}" for k, codes in place.items() for c in codes)
        return place, text
    try:
        place = accounts.parse_territory(text)
    except accounts.AccountError as exc:
        raise HTTPException(400, "Territoire illisible : écrivez par exemple departement:35 ou epci:243500139.") \
            from exc
    if not place:
        raise HTTPException(400, "Territoire illisible : écrivez par exemple departement:35.")
    if not scope.is_operator and not accounts.territory_contains(scope.territory, place):
        raise HTTPException(403, "Ce territoire n'est pas le vôtre.")
    return place, text


def _build(engine, place: dict[str, list[str]], text: str) -> Barometer:
    return barometer(engine, place, text)


def fragility_map(b: Barometer) -> str:
    """A tile map of the share of businesses at the first level: one tile per EPCI, or per commune inside one EPCI
    (groups too small to show are drawn empty, as in the tables)."""
    key = "par_epci" if len(b.table("par_epci").rows) > 1 else "par_commune"
    tiles = []
    for r in b.table(key).rows:
        n = r.get("n") or 0
        tiles.append(Tile(r["group"], r["group"], n, round((r.get("first_steps_share") or 0) * n)))
    data = MapData("epci" if key == "par_epci" else "commune", "", sorted(tiles, key=lambda t: t.name))
    data.bounds = _bounds([t.rate for t in data.tiles if t.rate is not None])
    where = "intercommunalité" if key == "par_epci" else "commune"
    return tile_map_svg(data, f"Part des entreprises aux {MATURITY_LEVELS['first_steps']}, par {where}",
                        "barometer-map-title", measure="aux premiers pas",
                        counted=("aux premiers pas", "au niveau connu"), legend="Part aux premiers pas")


def fragility_chart(b: Barometer) -> str:
    """Share of businesses at the first level, by trade family (groups large enough only)."""
    rows = [(r["group"], r["first_steps_share"], r["n"]) for r in b.table("par_metier").rows if r.get("n")]
    return bars_chart(rows, f"Part des entreprises aux {MATURITY_LEVELS['first_steps']}, par famille de métiers",
                      "fragility-title")


@router.get("/barometre", response_class=HTMLResponse)
async def barometer_page(request: Request, scope: ScopeDep, engine: EngineDep, territoire: str = ""):
    """The barometer of one territory: shares by maturity level, trade family, EPCI, commune and quarter."""
    asked = _territory(scope, territoire)
    if asked is None:
        return render(request, scope, "dash_barometer.html", barometer=None, territoire="")
    b = await run_in_threadpool(_build, engine, *asked)
    return render(request, scope, "dash_barometer.html", barometer=b, territoire=asked[1],
                  chart_svg=fragility_chart(b), map_svg=fragility_map(b), levels=MATURITY_LEVELS)


@router.get("/barometre.csv")
async def barometer_csv_export(scope: ScopeDep, declic: AppDep, territoire: str = ""):
    """The same figures as CSV (UTF-8 with BOM, `;`, French headers)."""
    asked = _territory(scope, territoire)
    if asked is None:
        raise HTTPException(400, "Choisissez un territoire, par exemple departement:35.")
    b = await run_in_threadpool(_build, declic.engine, *asked)
    name = "barometre-" + "-".join(c for codes in asked[0].values() for c in codes)[:60] + ".csv"
    return await run_in_threadpool(logged_csv, declic, scope, barometer_csv(b), name, f"barometer:{asked[1]}")
