"""A tile map of a campaign's territory, drawn server-side as inline SVG (no script, no tiles from a server).

No package on the registries ships the official contours of French communes and EPCI (the ones that exist
download them from IGN or INSEE at run time, which a dashboard must not need), so the territory is drawn as a
tile map: one square per EPCI (a département or a wider territory) or per commune (an EPCI or a few
communes), in alphabetical order, coloured by the conversion rate of the businesses contacted there. Each
tile has a <title> (read on hover and by screen readers), the legend says what the colours mean, and the
same figures are in a table beside it (`MapData.rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.stats import CampaignReport, fr_int, fr_percent
from segments.territory import commune, epcis

# Five classes of a sequential blue scale (light to dark) and a hatched grey for "no business targeted".
SCALE = ("#dbe8f7", "#a9c8ec", "#5f97d6", "#1f5fae", "#0a2f6b")
TEXT_ON = ("#111", "#111", "#111", "#fff", "#fff")
EMPTY = "#f1f1f1"
MAX_COMMUNE_TILES = 60


@dataclass(slots=True)
class Tile:
    code: str
    name: str
    targeted: int = 0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.targeted if self.targeted else None


@dataclass(slots=True)
class MapData:
    level: str  # "commune" or "epci"
    level_label: str
    tiles: list[Tile] = field(default_factory=list)
    bounds: tuple[float, ...] = ()  # upper bounds of the colour classes (rates)

    @property
    def rows(self) -> list[Tile]:
        """The table alternative: tiles with businesses first, largest first."""
        return sorted(self.tiles, key=lambda t: (-t.targeted, t.name))


def _territory_communes(spec_json) -> set[str]:
    try:
        spec = CampaignSpec.model_validate(spec_json)
    except ValueError:
        return set()
    return set(spec.effective_territory().communes_covered())


def map_data(report: CampaignReport, spec_json) -> MapData:
    """Tiles of the campaign's territory: communes when it has at most 60 of them, else EPCI."""
    communes = _territory_communes(spec_json)
    by_commune = {r["value"]: r for r in report.table("by_commune_code").rows if r["value"]}
    communes |= set(by_commune)  # businesses outside the spec's territory (an older spec) still show
    names = epcis()
    if len(communes) <= MAX_COMMUNE_TILES:
        tiles = {}
        for code in communes:
            info = commune(code)
            tiles[code] = Tile(code, info.nom if info else code)
        for code, r in by_commune.items():
            tile = tiles.setdefault(code, Tile(code, r["label"] or code))
            tile.targeted += r["targeted"]
            tile.converted += r["converted"]
        data = MapData("commune", "commune", list(tiles.values()))
    else:
        tiles = {}
        for code in communes:
            info = commune(code)
            key = (info.epci if info else None) or code
            if key not in tiles:
                name = names[key].nom if key in names else (info.nom if info else code)
                tiles[key] = Tile(key, name)
        for r in report.table("by_epci_code").rows:
            if r["value"]:
                tile = tiles.setdefault(r["value"], Tile(r["value"], r["label"] or r["value"]))
                tile.targeted += r["targeted"]
                tile.converted += r["converted"]
        data = MapData("epci", "intercommunalité", list(tiles.values()))
    data.tiles.sort(key=lambda t: t.name)
    data.bounds = _bounds([t.rate for t in data.tiles if t.rate is not None])
    return data


def _bounds(rates: list[float]) -> tuple[float, ...]:
    """Upper bounds of five equal classes from 0 to the highest rate (at least 5 %), rounded to 1 %."""
    top = max(rates + [0.05])
    step = math.ceil(top * 100 / len(SCALE)) / 100
    return tuple(round(step * (i + 1), 2) for i in range(len(SCALE)))


def _class(rate: float, bounds: tuple[float, ...]) -> int:
    for i, upper in enumerate(bounds):
        if rate <= upper:
            return i
    return len(bounds) - 1


def _short(name: str, limit: int = 15) -> list[str]:
    """A name on at most two lines of `limit` characters (cut with an ellipsis)."""
    words, lines, line = name.split(), [], ""
    for w in words:
        if len(line) + len(w) + (1 if line else 0) <= limit:
            line = f"{line} {w}".strip()
        else:
            if line:
                lines.append(line)
            line = w
    if line:
        lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], lines[1][: limit - 1] + "…"]
    return [ln if len(ln) <= limit else ln[: limit - 1] + "…" for ln in lines]


def tile_map_svg(data: MapData, title: str, ident: str = "map-title", *, measure: str = "de conversion",
                 counted: tuple[str, str] = ("convertie(s)", "ciblée(s)"), legend: str | None = None) -> str:
    """The tile map with its legend, as one accessible inline SVG. `measure` names the rate ("de conversion"),
    `counted` the two counts of a tile's title (the part, the whole)."""
    n = len(data.tiles)
    cols = max(1, min(6, math.ceil(math.sqrt(n * 1.5)))) if n else 1
    size_w, size_h, gap = 100, 64, 6
    rows = math.ceil(n / cols) if n else 1
    width = cols * (size_w + gap) - gap
    legend_y = rows * (size_h + gap) + 10
    body: list[str] = []
    for i, t in enumerate(data.tiles):
        x, y = (i % cols) * (size_w + gap), (i // cols) * (size_h + gap)
        if t.rate is None:
            fill, ink, figure = EMPTY, "#111", "aucune"
            tip = f"{t.name} : aucune entreprise {counted[1].removesuffix('(s)')}"
        else:
            k = _class(t.rate, data.bounds)
            fill, ink, figure = SCALE[k], TEXT_ON[k], fr_percent(t.rate)
            tip = (f"{t.name} : {fr_percent(t.rate)} {measure}, {fr_int(t.converted)} {counted[0]} "
                   f"sur {fr_int(t.targeted)} {counted[1]}")
        lines = _short(t.name)
        text = "".join(
            f'<text x="{x + 6}" y="{y + 16 + 14 * j}" fill="{ink}" font-size="12">{escape(ln)}</text>'
            for j, ln in enumerate(lines)
        )
        stroke = ' stroke="#767676" stroke-dasharray="3 2"' if t.rate is None else ""
        body.append(
            f'<g class="tile"><title>{escape(tip)}</title>'
            f'<rect x="{x}" y="{y}" width="{size_w}" height="{size_h}" rx="4" fill="{fill}"{stroke}/>{text}'
            f'<text x="{x + 6}" y="{y + size_h - 8}" fill="{ink}" font-size="13" font-weight="700">'
            f"{escape(figure)}</text></g>"
        )
    if not n:
        body.append('<text x="0" y="20">Territoire inconnu.</text>')
    # Legend: the colour classes, then the empty tile.
    lx = 0
    previous = 0.0
    legend_w = max(width, 330)
    step = min(64, (legend_w - 90) // len(SCALE))
    caption = escape(legend or f"Taux {measure}")
    body.append(f'<text x="0" y="{legend_y + 12}" fill="#111" font-size="12">{caption} :</text>')
    for i, upper in enumerate(data.bounds):
        x = lx + i * step
        body.append(f'<rect x="{x}" y="{legend_y + 18}" width="{step - 2}" height="14" fill="{SCALE[i]}" '
                    'stroke="#767676" stroke-width="0.5"/>')
        body.append(f'<text x="{x}" y="{legend_y + 46}" fill="#111" font-size="11">'
                    f"{escape(fr_percent(previous, 0))}</text>")
        previous = upper
    x = lx + len(SCALE) * step + 8
    body.append(f'<rect x="{x}" y="{legend_y + 18}" width="{step - 2}" height="14" fill="{EMPTY}" '
                'stroke="#767676" stroke-dasharray="3 2"/>')
    body.append(f'<text x="{x}" y="{legend_y + 46}" fill="#111" font-size="11">aucune</text>')
    height = legend_y + 52
    return (
        f'<svg class="chart map" viewBox="0 0 {legend_w} {height}" width="{legend_w}" height="{height}" '
        f'role="img" aria-labelledby="{ident}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif"><title id="{ident}">{escape(title)}</title>{"".join(body)}</svg>'
    )
