"""No dead function: vulture (settings in pyproject.toml `[tool.vulture]`) finds no unused function, class, method or
property in the packages. A use anywhere in the tree counts (a benchmark, a test helper); framework entry points are
its ignored decorators and tests/vulture_whitelist.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "triggers", "segments", "templates", "integrations", "store", "web")
DEAD = re.compile(r"^(?P<path>[^:]+):\d+: unused (function|class|method|property) ")


def test_vulture_finds_no_dead_function():
    result = subprocess.run([sys.executable, "-m", "vulture"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode in (0, 3), result.stderr[-2000:]  # 3: vulture found something (filtered below)
    dead = [line for line in result.stdout.splitlines()
            if (m := DEAD.match(line)) and m["path"].split("/")[0] in PACKAGES]
    assert dead == [], "unused code (remove it, or whitelist a framework entry point):\n" + "\n".join(dead)
