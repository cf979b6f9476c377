"""The pure core is typed: mypy, strict on orchestrator/core, segments and templates/lint.py (settings and the list
of files in pyproject.toml `[tool.mypy]`), finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--no-color-output"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
