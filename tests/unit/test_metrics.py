"""Interval and uplift maths against worked examples computed by hand (and published ones)."""

from __future__ import annotations

import math

import pytest

from orchestrator.core.stats import (
    Counts,
    FunnelRow,
    build_report,
    campaign_uplift,
    compare_variants,
    fr_cell,
    fr_int,
    fr_percent,
    fr_points,
    newcombe,
    uplift,
    wilson,
)


def test_wilson_56_of_70():
    """Worked by hand, z = 1.959964, z² = 3.841459, n = 70, p = 0.8:

    z²/n = 0.054878, so the denominator is 1.054878;
    centre = (0.8 + 3.841459 / 140) / 1.054878 = (0.8 + 0.027439) / 1.054878 = 0.784394;
    half-width = 1.959964 / 1.054878 × √(0.8 × 0.2 / 70 + 3.841459 / (4 × 4900))
               = 1.858001 × √(0.0022857 + 0.0001960) = 1.858001 × 0.049816 = 0.092560;
    interval = 0.784394 ± 0.092560 = [0.691834, 0.876954]. Newcombe (1998), Table I: 0.6918 to 0.8770.
    """
    lo, hi = wilson(56, 70)
    assert lo == pytest.approx(0.691834, abs=5e-6)
    assert hi == pytest.approx(0.876954, abs=5e-6)


def test_wilson_zero_successes_starts_at_zero():
    """k = 0, n = 10: p = 0, z²/n = 0.384146, denominator 1.384146;
    centre = (0 + 3.841459 / 20) / 1.384146 = 0.192073 / 1.384146 = 0.138766;
    half = 1.959964 / 1.384146 × √(0 + 3.841459 / 400) = 1.416008 × 0.097998 = 0.138766;
    interval = [0, 0.277533] (the lower bound is exactly 0, never negative)."""
    lo, hi = wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.277533, abs=2e-6)


def test_wilson_of_an_empty_group_is_uninformative():
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_newcombe_56_of_70_minus_48_of_80():
    """Newcombe (1998) example (a), method 10. By hand:

    p1 = 0.8, Wilson [l1, u1] = [0.691833, 0.876955] (above).
    p2 = 0.6, n2 = 80: z²/n = 0.048018, denominator 1.048018;
      centre = (0.6 + 3.841459 / 160) / 1.048018 = 0.624009 / 1.048018 = 0.595418;
      half = 1.959964 / 1.048018 × √(0.24 / 80 + 3.841459 / 25600) = 1.870162 × √(0.003 + 0.00015006)
           = 1.870162 × 0.056125 = 0.104963; [l2, u2] = [0.490455, 0.700381].
    d = 0.2; lower = 0.2 − √((0.8 − 0.691833)² + (0.700381 − 0.6)²) = 0.2 − √(0.011700 + 0.010076)
      = 0.2 − 0.147567 = 0.052433;
    upper = 0.2 + √((0.876955 − 0.8)² + (0.6 − 0.490455)²) = 0.2 + √(0.005922 + 0.012000)
      = 0.2 + 0.133874 = 0.333874. Published: 0.0524 to 0.3339.
    """
    d, lo, hi = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.052433, abs=1e-5)
    assert hi == pytest.approx(0.333874, abs=1e-5)


def test_newcombe_with_an_empty_control_rate():
    """Newcombe (1998) example (f): 5/56 − 0/29, method 10, published −0.0381 to 0.1926. By hand:

    p1 = 0.089286; Wilson(5, 56): z²/n = 0.068598, denominator 1.068598,
      centre = (0.089286 + 0.034299) / 1.068598 = 0.115652,
      half = 1.834147 × √(0.0014518 + 0.0003062) = 1.834147 × 0.041929 = 0.076904 → [0.038748, 0.192556].
    p2 = 0; Wilson(0, 29): z²/n = 0.132464, denominator 1.132464,
      centre = 0.066232 / 1.132464 = 0.058485, half = 1.730698 × √(3.841459 / 3364) = 1.730698 × 0.033793
      = 0.058485 → [0, 0.116970].
    lower = 0.089286 − √((0.089286 − 0.038748)² + (0.116970 − 0)²) = 0.089286 − √(0.002554 + 0.013682)
          = 0.089286 − 0.127420 = −0.038134;
    upper = 0.089286 + √((0.192556 − 0.089286)² + 0) = 0.089286 + 0.103270 = 0.192556.
    """
    d, lo, hi = newcombe(5, 56, 0, 29)
    assert d == pytest.approx(5 / 56)
    assert lo == pytest.approx(-0.038134, abs=2e-5)
    assert hi == pytest.approx(0.192556, abs=2e-5)


def test_uplift_is_symmetric_and_flags_significance():
    """Swapping the groups negates the difference and swaps the bounds (a property of method 10)."""
    a = uplift(56, 70, 48, 80)
    b = uplift(48, 80, 56, 70)
    assert a.difference == pytest.approx(-b.difference)
    assert a.lower == pytest.approx(-b.upper) and a.upper == pytest.approx(-b.lower)
    assert a.significant and not uplift(5, 56, 0, 29).significant
    assert uplift(1, 10, 0, 0) is None


def test_campaign_uplift_uses_contacted_treatment_against_the_whole_holdout():
    """Treatment: 100 targeted, 80 contacted, 12 converted; holdout: 50 targeted, 3 converted.

    "contacted" basis: 12/80 = 15 % vs 3/50 = 6 %: +9 points. "targeted": 12/100 = 12 % vs 6 %: +6 points."""
    funnel = {
        "treatment": Counts(targeted=100, contacted=80, converted=12, contacted_converted=12),
        "holdout": Counts(targeted=50, converted=3),
    }
    on_contacted = campaign_uplift(funnel, "contacted")
    on_targeted = campaign_uplift(funnel, "targeted")
    assert on_contacted.difference == pytest.approx(0.09)
    assert on_targeted.difference == pytest.approx(0.06)
    assert campaign_uplift({"treatment": Counts(targeted=5, contacted=5)}) is None


def row(
    arm="treatment",
    variant=None,
    family="batiment",
    commune="35238",
    targeted=10,
    contacted=10,
    clicked=0,
    converted=0,
    days=0.0,
) -> FunnelRow:
    return FunnelRow(
        arm,
        variant,
        "creation",
        family,
        commune,
        "243500139",
        "35",
        "email",
        targeted,
        contacted,
        contacted,
        clicked,
        0,
        converted,
        0,
        days,
        contacted_converted=min(converted, contacted),
    )


def test_variants_compare_conversion_among_contacted_to_the_first():
    """A: 10/100 converted, B: 20/100: B − A = +10 points; A is the reference (no comparison)."""
    rows = [
        row(variant="A", targeted=100, contacted=100, clicked=30, converted=10),
        row(variant="B", targeted=100, contacted=100, clicked=40, converted=20),
        row(arm="holdout", targeted=50, contacted=0, converted=1),
    ]
    a, b = compare_variants(rows)
    assert a.variant == "A" and a.vs_reference is None and a.click_rate == pytest.approx(0.3)
    d, lo, hi = b.vs_reference
    assert d == pytest.approx(0.1) and lo < d < hi
    assert compare_variants([row(variant="A")]) == []


def test_report_tables_add_up_and_name_codes():
    rows = [
        row(family="batiment", targeted=6, contacted=6, clicked=3, converted=2, days=5.0),
        row(family="alimentation", targeted=4, contacted=3, clicked=1, converted=1, days=1.0),
        row(arm="holdout", family="batiment", targeted=5, contacted=0, converted=1, days=2.0),
    ]
    report = build_report(
        campaign="c",
        title="C",
        status="active",
        rows=rows,
        source="live",
        as_of=None,
        labels=lambda dim, code: code.upper(),
    )
    assert report.funnel["treatment"].targeted == 10 and report.funnel["treatment"].converted == 3
    assert report.funnel["treatment"].mean_days_to_conversion == pytest.approx(2.0)
    by_family = report.table("by_metier_family")
    assert [r["value"] for r in by_family.rows] == ["alimentation", "batiment"]
    assert by_family.rows[1]["label"] == "BATIMENT" and by_family.rows[1]["holdout_targeted"] == 5
    assert sum(r["targeted"] for r in by_family.rows) == 10
    assert by_family.rows[1]["uplift"] == pytest.approx(2 / 6 - 1 / 5)
    assert report.uplift.difference == pytest.approx(3 / 9 - 1 / 5)


def test_french_number_format():
    assert fr_int(1234567) == "1\u202f234\u202f567"
    assert fr_percent(0.1234) == "12,3\u00a0%"
    assert fr_points(-0.052) == "−5,2\u00a0pts" and fr_points(0.1) == "+10,0\u00a0pts"
    assert fr_cell(None, "pct") == "–" and fr_cell(2.75, "days") == "2,8" and fr_cell(12, "int") == "12"
    assert math.isclose(float(fr_cell(0.5, "days").replace(",", ".")), 0.5)


def test_marginal_rows_give_the_same_report_as_fine_rows():
    """The rollup stores marginals (one row per breakdown value): the report must not change."""
    from orchestrator.core.stats import marginals

    rows = [
        row(variant="A", family="batiment", commune="35238", targeted=6, contacted=5, clicked=2, converted=1),
        row(
            variant="B",
            family="alimentation",
            commune="35047",
            targeted=4,
            contacted=4,
            clicked=1,
            converted=2,
        ),
        row(variant="A", family="alimentation", commune="35238", targeted=3, contacted=3, converted=1),
        row(arm="holdout", family="batiment", commune="35047", targeted=5, contacted=0, converted=1),
    ]
    fine = build_report(campaign="c", title="C", status="active", rows=rows, source="live", as_of=None)
    rolled = marginals(rows)
    assert len(rolled) < 6 * len(rows) and all(r.grouping for r in rolled)
    again = build_report(campaign="c", title="C", status="active", rows=rolled, source="rollup", as_of=None)
    assert [t.rows for t in again.tables] == [t.rows for t in fine.tables]
    assert marginals(rolled) == rolled


def test_the_uplift_counts_only_conversions_of_the_contacted():
    """Treatment: 10 targeted, 8 contacted, 3 converted of which 1 was never reached; holdout 10, 1.

    "contacted" basis: 2/8 = 25 % vs 1/10 = 10 %: +15 points (not 3/8); "targeted": 3/10 vs 1/10: +20."""
    rows = [
        FunnelRow(
            "treatment",
            None,
            "creation",
            "batiment",
            "35238",
            None,
            "35",
            "email",
            10,
            8,
            8,
            0,
            0,
            3,
            0,
            9.0,
            contacted_converted=2,
        ),
        FunnelRow(
            "holdout", None, "creation", "batiment", "35238", None, "35", None, 10, 0, 0, 0, 0, 1, 0, 3.0
        ),
    ]
    report = build_report(campaign="c", title="C", status="active", rows=rows, source="live", as_of=None)
    assert report.uplift.difference == pytest.approx(0.15)
    assert report.uplift_itt.difference == pytest.approx(0.2)
    assert report.table("by_metier_family").rows[0]["uplift"] == pytest.approx(0.15)


def test_every_trigger_type_has_a_french_label():
    from store.report import TRIGGER_LABELS
    from triggers.model import TRIGGER_TYPES

    assert set(TRIGGER_TYPES) <= set(TRIGGER_LABELS)
