"""The ambassadors' place index kept from one planning batch to the next: its places and shortlists are kept while
every ambassador serves what they served (only their capacity left changed), and each pick is this batch's view."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.core.planner import PlaceIndex, pick_ambassador
from tests.unit.test_planner_journeys import ambassador, business


def test_a_renewed_index_keeps_its_shortlists_and_picks_this_batchs_views():
    near, far = ambassador(1, epcis=("243500139",), remaining=1), ambassador(2, remaining=5)
    first = PlaceIndex([near, far])
    b = business()
    assert pick_ambassador(b, first, {1: 1, 2: 5}) is near
    assert len(first.shortlists) == 1

    spent = replace(near, remaining=0)  # the next batch: Amb 1 introduced once
    second = first.renewed([spent, far])
    assert second.shortlists is first.shortlists and second.by is first.by  # kept, not rebuilt
    assert second.items == [spent, far]
    assert pick_ambassador(b, second, {1: 0, 2: 5}) is far
    again = replace(near, remaining=3)  # capacity given back: the pick is this view, not the shortlisted one
    third = second.renewed([again, far])
    assert pick_ambassador(b, third, {1: 3, 2: 5}) is again


def test_an_index_is_rebuilt_when_an_ambassador_serves_other_places_or_trades():
    near, far = ambassador(1, epcis=("243500139",)), ambassador(2)
    first = PlaceIndex([near, far])
    b = business()
    assert pick_ambassador(b, first, {1: 5, 2: 5}) is near
    moved = replace(near, epcis=frozenset({"200039022"}))  # no longer serves the business's EPCI
    second = first.renewed([moved, far])
    assert second.shortlists is not first.shortlists
    assert pick_ambassador(b, second, {1: 5, 2: 6}) is far  # both by département now: more capacity left wins
    other_trade = first.renewed([replace(near, families=frozenset({"alimentation"})), far])
    assert other_trade.shortlists is not first.shortlists
    assert pick_ambassador(b, other_trade, {1: 5, 2: 5}) is far  # Amb 1 no longer serves the trade
    assert first.renewed([far, near]).shortlists is not first.shortlists  # another order: rebuilt
    assert first.renewed([near]).shortlists is not first.shortlists  # one fewer: rebuilt
    duplicated = first.renewed([near, replace(far, id=1)])
    assert duplicated.shortlists is not first.shortlists
