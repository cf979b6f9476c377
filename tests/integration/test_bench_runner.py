"""The bench runner's own parts: a revision exported to compare against, the machine reference, bad names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.__main__ import ROOT, export, main
from bench.reference import interpreter_ms, library_ms, measure, sqlite_ms


def test_export_writes_the_revision_and_names_its_commit(tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()[0]

    assert export("HEAD", tmp_path / "head") == head
    assert (tmp_path / "head" / "bench" / "__main__.py").read_bytes() == \
        subprocess.run(["git", "show", "HEAD:bench/__main__.py"], cwd=ROOT, check=True, capture_output=True).stdout
    assert export(first, tmp_path / "first") == first
    assert not (tmp_path / "first" / "bench" / "reference.py").exists()  # the first commit predates it


def test_an_unknown_revision_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        export("no-such-revision", tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["email", "--against", "no-such-revision"])
    assert exit_.value.code == 2
    assert "révision git inconnue : no-such-revision" in capsys.readouterr().err


def test_an_unknown_bench_is_refused_with_the_known_ones(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "pas de benchmark nope" in err and "email" in err and "api" in err


def test_the_reference_workloads_take_time_and_report_the_load(tmp_path: Path) -> None:
    assert interpreter_ms() > 0
    assert library_ms() > 0
    assert sqlite_ms(tmp_path) > 0
    assert not list(tmp_path.iterdir())  # the scratch database is removed
    figures = measure(repeat=1)
    assert set(figures) == {"interpreter_ms", "library_ms", "sqlite_ms", "load_1min"}
    assert figures["interpreter_ms"] > 0 and figures["library_ms"] > 0 and figures["sqlite_ms"] > 0
