"""The barometer's pure maths (issue 16, point 6): levels, quarters, the latest answer per business, hidden small
groups, Wilson intervals, the French CSV."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.core.barometer import (
    Answer,
    barometer_csv,
    build_barometer,
    maturity_level,
    quarter_label,
    quarter_of,
)
from orchestrator.core.stats import wilson


def _answers(n: int, score: int, day: dt.date | None, family: str = "batiment", start: int = 0) -> list[Answer]:
    return [Answer(start + i, score, day, family, "243500139", "35238") for i in range(n)]


def test_levels_and_quarters():
    assert [maturity_level(s) for s in range(6)] == ["first_steps"] * 2 + ["on_the_way"] * 2 + ["well_equipped"] * 2
    assert quarter_of(dt.date(2026, 11, 5)) == "2026-T4" and quarter_label("2026-T1") == "1er trimestre 2026"
    assert quarter_label("2026-T4") == "4e trimestre 2026"


def test_latest_answer_counts_once_small_groups_are_hidden():
    q2, q4 = dt.date(2026, 5, 1), dt.date(2026, 11, 1)
    answers = (
        _answers(12, 0, q2) + _answers(12, 5, q4)  # the same 12 businesses: first steps in May, equipped now
        + _answers(4, 3, None, start=12)  # undated stored maturity
        + _answers(4, 2, q4, start=12)  # ... a dated answer beats it
        + _answers(3, 1, q4, family="alimentation", start=100)
    )
    b = build_barometer(answers, territory="departement:35", territory_label="Ille-et-Vilaine", businesses=40,
                        labels=lambda _d, code: {"batiment": "Bâtiment"}.get(code, code or ""), min_count=10)
    overall = b.table("ensemble").rows[0]
    assert b.answered == overall["n"] == 19
    assert overall["well_equipped_share"] == pytest.approx(12 / 19)
    assert (overall["on_the_way_lower"], overall["on_the_way_upper"]) == pytest.approx(wilson(4, 19))
    families = {r["group"]: r for r in b.table("par_metier").rows}
    assert families["Bâtiment"]["n"] == 16
    assert families["alimentation"]["n"] is None and "effectif trop faible" in families["alimentation"]["note"]
    quarters = {r["group"]: r for r in b.table("par_trimestre").rows}
    assert quarters["2e trimestre 2026"]["first_steps_share"] == 1.0 and quarters["4e trimestre 2026"]["n"] == 19
    text = barometer_csv(b)
    assert text.splitlines()[0].startswith("Rubrique;Groupe;Effectif;Premiers pas : part (%);")
    assert "Ensemble : Ille-et-Vilaine;Ille-et-Vilaine;19;15,8;" in text
