"""Server-rendered inline SVG charts (no script, no CDN). Each chart has a text title and an accessible
name; the same figures are always in a table next to it."""

from __future__ import annotations

from html import escape

from orchestrator.core.stats import STAGE_LABELS, STAGES, CampaignReport, Uplift, fr_int, fr_percent, fr_points

BLUE, ORANGE, GREY, INK = "#0a4aa8", "#b35c00", "#767676", "#111"


def _svg(width: int, height: int, title: str, body: list[str], ident: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
        f'font-size="13"><title id="{ident}">{escape(title)}</title>{"".join(body)}</svg>'
    )


def funnel_chart(report: CampaignReport) -> str:
    """Bars per stage for the contacted group, with the control group's targeted and converted below."""
    t, h = report.funnel["treatment"], report.funnel["holdout"]
    label_w, bar_w, row_h = 150, 360, 26
    top = max(t.targeted, h.targeted, 1)
    body: list[str] = []
    y = 8
    for stage in STAGES:
        value = getattr(t, stage)
        w = round(bar_w * value / top)
        body.append(
            f'<text x="0" y="{y + 17}" fill="{INK}">{escape(STAGE_LABELS[stage].capitalize())}</text>'
        )
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" fill="{BLUE}"/>')
        share = f" ({fr_percent(value / t.targeted)})" if t.targeted and stage != "targeted" else ""
        body.append(f'<text x="{label_w + w + 6}" y="{y + 17}" fill="{INK}">{fr_int(value)}{share}</text>')
        y += row_h
    y += 8
    body.append(f'<text x="0" y="{y + 17}" fill="{INK}" font-weight="600">Groupe témoin</text>')
    y += row_h
    for stage in ("targeted", "converted"):
        value = getattr(h, stage)
        w = round(bar_w * value / top)
        body.append(
            f'<text x="0" y="{y + 17}" fill="{INK}">{escape(STAGE_LABELS[stage].capitalize())}</text>'
        )
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" fill="{ORANGE}"/>')
        share = f" ({fr_percent(value / h.targeted)})" if h.targeted and stage == "converted" else ""
        body.append(f'<text x="{label_w + w + 6}" y="{y + 17}" fill="{INK}">{fr_int(value)}{share}</text>')
        y += row_h
    return _svg(
        label_w + bar_w + 140, y + 6, f"Entonnoir de la campagne {report.title}", body, "funnel-title"
    )


def uplift_chart(
    items: list[tuple[str, Uplift | tuple[float, float, float] | None]],
    title: str,
    ident: str = "uplift-title",
) -> str:
    """Each difference as a dot with its 95 % interval, around a zero line (percentage points)."""
    rows = [(label, (u.difference, u.lower, u.upper) if isinstance(u, Uplift) else u) for label, u in items]
    rows = [(label, v) for label, v in rows if v is not None]
    label_w, plot_w, row_h = 190, 380, 34
    if not rows:
        return _svg(label_w + plot_w, 30, title, ['<text x="0" y="20">Pas assez de données.</text>'], ident)
    span = max(0.05, *(max(abs(lo), abs(hi)) for _, (_, lo, hi) in rows)) * 1.1

    def x(v: float) -> float:
        return label_w + plot_w / 2 + v / span * plot_w / 2

    height = 24 + row_h * len(rows)
    body = [
        f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 18}" stroke="{GREY}" '
        'stroke-dasharray="4 3"/>',
        f'<text x="{x(0):.1f}" y="{height - 4}" text-anchor="middle" fill="{INK}">0</text>',
        f'<text x="{x(-span) + 2:.1f}" y="{height - 4}" fill="{INK}">{escape(fr_points(-span, 0))}</text>',
        f'<text x="{x(span) - 2:.1f}" y="{height - 4}" text-anchor="end" fill="{INK}">'
        f"{escape(fr_points(span, 0))}</text>",
    ]
    y = 6
    for label, (d, lo, hi) in rows:
        cy = y + row_h / 2
        colour = BLUE if lo > 0 else (ORANGE if hi < 0 else GREY)
        body.append(f'<text x="0" y="{cy + 4:.1f}" fill="{INK}">{escape(label)}</text>')
        body.append(
            f'<line x1="{x(lo):.1f}" y1="{cy:.1f}" x2="{x(hi):.1f}" y2="{cy:.1f}" stroke="{colour}" '
            'stroke-width="3"/>'
        )
        body.append(f'<circle cx="{x(d):.1f}" cy="{cy:.1f}" r="6" fill="{colour}"/>')
        body.append(
            f'<text x="{x(d):.1f}" y="{cy - 9:.1f}" text-anchor="middle" fill="{INK}">'
            f"{escape(fr_points(d))} [{escape(fr_points(lo))} ; {escape(fr_points(hi))}]</text>"
        )
        y += row_h
    return _svg(label_w + plot_w + 20, height, title, body, ident)


def bars_chart(rows: list[tuple[str, float | None, int]], title: str, ident: str) -> str:
    """Horizontal bars of a rate per label (with the group size), e.g. conversion by territory."""
    label_w, bar_w, row_h = 220, 300, 24
    rows = rows[:20]
    top = max([r for _, r, _ in rows if r] + [0.0001])
    body: list[str] = []
    y = 4
    for label, rate, n in rows:
        w = round(bar_w * (rate or 0) / top)
        body.append(f'<text x="0" y="{y + 16}" fill="{INK}">{escape(label[:32])}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" fill="{BLUE}"/>')
        body.append(
            f'<text x="{label_w + w + 6}" y="{y + 16}" fill="{INK}">{escape(fr_percent(rate))} '
            f"sur {escape(fr_int(n))}</text>"
        )
        y += row_h
    if not rows:
        body.append('<text x="0" y="18">Pas encore de données.</text>')
        y += row_h
    return _svg(label_w + bar_w + 130, y + 4, title, body, ident)
