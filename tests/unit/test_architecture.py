"""The layers are checked, not hoped (DESIGN rule 8): the import-linter contracts of pyproject.toml hold, and every
import a contract lets through is explained in one line in README "Layer contract exceptions"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _exceptions_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Layer contract exceptions")
    end = readme.find("\n#", start)
    return readme[start:end if end >= 0 else len(readme)]


def test_import_contracts_are_kept():
    # The CLI in a child process: the graph is built from the tree on disk, not from what this session imported.
    # An ignore that no longer matches any import also fails here: remove it (and its README line).
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


def test_every_contract_exception_is_explained_in_the_readme():
    section = _exceptions_section()
    ignored = {ignore for contract in _contracts() for ignore in contract.get("ignore_imports", [])}
    explained = set(re.findall(r"`([\w.*]+ -> [\w.*]+)`", section))
    assert ignored - explained == set(), "ignore_imports without a line in README 'Layer contract exceptions'"
    assert explained - ignored == set(), "README 'Layer contract exceptions' names imports no contract ignores"


def test_the_layers_name_every_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
        "root_packages"]
    layered = {part.strip().split(".")[0] for contract in _contracts() if contract["type"] == "layers"
               for layer in contract["layers"] for part in layer.split(":")}
    assert set(packages) <= layered
