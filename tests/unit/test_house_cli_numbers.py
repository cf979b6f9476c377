"""The terminal counts use the same French number format as the dashboard (orchestrator.core.stats.fr_int)."""

from __future__ import annotations

from rich.console import Console

from orchestrator.cli import main as cli
from orchestrator.core.stats import NBSP


def test_plan_and_dispatch_counts_are_printed_the_french_way(monkeypatch) -> None:
    console = Console(record=True, width=80)
    monkeypatch.setattr(cli, "console", console)
    cli._print_counts("Planification", {"planned": 12345, "skipped": 7})
    text = console.export_text()
    assert f"12{NBSP}345" in text
    assert "12,345" not in text
