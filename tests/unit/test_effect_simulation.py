"""The proof-of-effect simulation (issue 20): per-campaign control groups are contaminated and biased toward
zero; shared ones are clean, and their estimate holds the true effect."""

from __future__ import annotations

from orchestrator.core.effect_simulation import simulate


def test_shared_arms_are_unbiased_and_per_campaign_arms_are_not():
    result = simulate(n=3000, seeds=range(60))
    effect, summary = result["effect"], result["summary"]
    for e in result["first"]:
        if e.world == "shared":
            assert e.control_contacted == 0
            assert e.uplift.lower <= effect <= e.uplift.upper
        else:
            assert e.control_contacted > 0.3 * e.uplift.control_n  # the neighbour writes to its control group
    for campaign in ("departement-batiment", "metropole-batiment"):
        assert abs(summary[("shared", campaign)]["mean"] - effect) < 0.01
        assert summary[("shared", campaign)]["coverage"] > 0.85
        assert summary[("per-campaign", campaign)]["mean"] < effect - 0.02
