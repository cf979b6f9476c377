"""Proof of effect: a seeded simulation with a known true effect, two nested campaigns, two ways of drawing
control groups (issue 20). Pure: the real planner, no store. `python -m orchestrator.core.effect_simulation`.

A Département campaign (all of Ille-et-Vilaine) and a Rennes Métropole campaign (its EPCI) both welcome
building-trade creations, each with a 20 % control group. A business converts with probability `base`, or
`base + effect` once any campaign has written to it (the true effect). Two worlds:

- per-campaign arms (before): each campaign enrols every business of its segment and draws its own control
  group (`arm_for(campaign, business)`); a business held out by one is usually written to by the other;
- shared arms (now): the planner arbitrates (one campaign per business and moment) and draws the arm from the
  business and its moment, so a control business is contacted by no one.

Each campaign's uplift is its treated conversion rate minus its control group's, with Newcombe's 95 %
interval (`orchestrator.core.stats.uplift`).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import BusinessView, CampaignRule, Candidate, arm_for, plan
from orchestrator.core.stats import Uplift, uplift
from orchestrator.core.windows import place_of

NOW = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
ZONE = ZoneInfo(place_of("35").timezone)  # the simulated territory's (Ille-et-Vilaine)
# (commune, EPCI) in Ille-et-Vilaine: three inside Rennes Métropole, two outside.
PLACES = [("35238", "243500139"), ("35024", "243500139"), ("35047", "243500139"), ("35288", "243500782"),
          ("35360", "200039022")]


@dataclass(frozen=True, slots=True)
class Estimate:
    world: str  # "per-campaign" | "shared"
    campaign: str
    uplift: Uplift
    control_contacted: int  # control businesses written to by some campaign anyway


def _spec(name: str, owner: str, territory: dict[str, list[str]], holdout: float) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": name, "owner": {"name": owner, "territory": territory},
        "sender": {"name": owner, "address": "1 avenue de la Préfecture, 35042 Rennes"},
        "contact": {"name": "Claire Le Goff", "phone": "02 99 02 35 36"}, "triggers": ["creation"],
        "segment": {"families": ["batiment"]}, "holdout": holdout,
        "steps": [{"channel": "email", "delay": "0d", "template": "creation"}]})


def campaigns(holdout: float = 20) -> list[CampaignRule]:
    return [CampaignRule(1, 1, _spec("departement-batiment", "Département d'Ille-et-Vilaine",
                                     {"departements": ["35"]}, holdout)),
            CampaignRule(2, 1, _spec("metropole-batiment", "Rennes Métropole", {"epci": ["243500139"]}, holdout))]


def population(n: int) -> list[Candidate]:
    out = []
    for i in range(1, n + 1):
        commune, epci = PLACES[i % len(PLACES)]
        b = BusinessView(i, f"{i:014d}", None, "plombier", "batiment", "Bâtiment", commune, None, epci, "35", "53",
                         None, "active", False, f"e{i}@exemple.fr", None, None)
        out.append(Candidate(i, "creation", dt.date(2026, 11, 20), b))
    return out


def arms_per_campaign(candidates: list[Candidate], rules: list[CampaignRule]) -> dict[int, dict[int, str]]:
    """Before: every campaign whose territory holds the business enrols it, with its own draw."""
    out: dict[int, dict[int, str]] = {r.id: {} for r in rules}
    for c in candidates:
        b = c.business
        for r in rules:
            if r.spec.effective_territory().contains(b.commune_code, b.epci_code, b.departement_code,
                                                     b.region_code):
                out[r.id][b.id] = arm_for(r.id, b.id, r.spec.holdout)
    return out


def arms_shared(candidates: list[Candidate], rules: list[CampaignRule]) -> dict[int, dict[int, str]]:
    """Now: the planner's own decisions (one campaign per business and moment, the moment's arm)."""
    decided = plan(candidates, rules, now=NOW, zone=ZONE, enrolled=set(), suppressed=set())
    out: dict[int, dict[int, str]] = {r.id: {} for r in rules}
    for e in decided.enrollments:
        out[e.campaign_id][e.business_id] = e.arm
    return out


def estimate(world: str, arms: dict[int, dict[int, str]], rules: list[CampaignRule], draws: dict[int, float],
             base: float, effect: float) -> list[Estimate]:
    contacted = {b for by_business in arms.values() for b, arm in by_business.items() if arm == "treatment"}
    converted = {b for b, u in draws.items() if u < base + (effect if b in contacted else 0.0)}
    out = []
    for r in rules:
        treated = [b for b, arm in arms[r.id].items() if arm == "treatment"]
        control = [b for b, arm in arms[r.id].items() if arm == "holdout"]
        u = uplift(sum(b in converted for b in treated), len(treated), sum(b in converted for b in control),
                   len(control), "targeted")
        if u is None:
            raise ValueError(f"{r.spec.name} : un groupe est vide (population trop petite)")
        out.append(Estimate(world, r.spec.name, u, sum(b in contacted for b in control)))
    return out


def simulate(n: int = 6000, base: float = 0.10, effect: float = 0.06, seeds: range = range(200)
             ) -> dict[str, Any]:
    """Estimates of both worlds on one seeded population (seed 0), and over many seeds: the mean estimate and
    how often the 95 % interval holds the true effect."""
    rules, candidates = campaigns(), population(n)
    worlds = {"per-campaign": arms_per_campaign(candidates, rules), "shared": arms_shared(candidates, rules)}
    runs: dict[tuple[str, str], list[Uplift]] = {}
    first: list[Estimate] = []
    for seed in seeds:
        rng = random.Random(seed)
        draws = {c.business.id: rng.random() for c in candidates}
        for world, arms in worlds.items():
            found = estimate(world, arms, rules, draws, base, effect)
            if seed == seeds[0]:
                first += found
            for e in found:
                runs.setdefault((world, e.campaign), []).append(e.uplift)
    summary = {key: {"mean": statistics.fmean(u.difference for u in ups),
                     "coverage": sum(u.lower <= effect <= u.upper for u in ups) / len(ups)}
               for key, ups in runs.items()}
    return {"n": n, "base": base, "effect": effect, "seeds": len(seeds), "first": first, "summary": summary}


def markdown(result: dict[str, Any]) -> str:
    """The figures as the README prints them."""

    def pts(x: float) -> str:
        return f"{x * 100:+.1f}".replace(".", ",")

    lines = ["| arms | campaign | treated | control | control contacted anyway | uplift (pts), seed 0 | 95 % interval "
             f"| mean over {result['seeds']} seeds | interval holds the truth |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for e in result["first"]:
        s = result["summary"][(e.world, e.campaign)]
        lines.append(f"| {e.world} | {e.campaign} | {e.uplift.treated_n} | {e.uplift.control_n} "
                     f"| {e.control_contacted} | {pts(e.uplift.difference)} "
                     f"| [{pts(e.uplift.lower)} ; {pts(e.uplift.upper)}] | {pts(s['mean'])} "
                     f"| {s['coverage'] * 100:.0f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = simulate()
    print(f"{outcome['n']} creations, base rate {outcome['base']:.0%}, true effect "
          f"{outcome['effect'] * 100:+.1f} pts\n")
    print(markdown(outcome))
