"""`declic demo` on a fresh home: exits 0 and reports messages sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECLIC_")}
    env["DECLIC_HOME"] = str(tmp_path / "var")
    declic = Path(sys.executable).parent / "declic"
    result = subprocess.run([str(declic), "demo", "--json", "--businesses", "600", "--events", "120"],
                            capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["sent"] > 0
    assert summary["received_by_smtp"] == summary["sent"]
    assert summary["events_rejected"] >= 1  # the synthetic partner file carries a few bad SIRETs
    assert summary["duplicates_ignored"] > 0
    assert list((tmp_path / "var" / "demo" / "mails").glob("*.eml"))
