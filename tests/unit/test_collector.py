"""The cyclic garbage collector paused for bulk work, and put back as it was."""

from __future__ import annotations

import datetime as dt
import gc

import pytest

from orchestrator.app import intake
from orchestrator.app.collector import collector_paused


@pytest.fixture
def collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_in_the_block_and_back_after(collector_restored):
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_left_off_when_it_was_off(collector_restored):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_back_on_after_an_error(collector_restored):
    gc.enable()
    with pytest.raises(ZeroDivisionError), collector_paused():
        raise ZeroDivisionError
    assert gc.isenabled()


def test_a_partner_batch_runs_with_the_collector_paused(collector_restored, monkeypatch):
    seen = []
    monkeypatch.setattr(intake, "_accept_batch", lambda *args: seen.append(gc.isenabled()) or ({}, []))
    gc.enable()
    today = dt.date(2026, 12, 6)
    assert intake.accept_batch(None, None, [], None, today, dt.datetime(2026, 12, 6, 9)) == ({}, [])
    assert seen == [False] and gc.isenabled()
