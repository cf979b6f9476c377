"""The README's "Using it" section as written, after `declic demo`: every command answers in French (issue 19,
"Done when"): no snake_case code, English status word, traceback, ISO timestamp or bare SIREN/SIRET in what a
person reads. `--json` outputs are for machines and are not scanned; `declic serve` blocks, so its `--help` is.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.utils.french_scan import problems

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The shell lines of the first bash block of the README's "Using it" section, comments dropped, `&&` split."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(shlex.join(words[:cut]))
            words = words[cut + 1:]
    return commands


def test_the_readme_commands_are_read():
    commands = readme_commands()
    assert commands[0] == "export DECLIC_HOME=var/demo"
    assert "declic plan" in commands and "declic dispatch" in commands
    assert any(c.startswith("declic report") for c in commands)


@pytest.mark.slow
def test_the_readme_runs_in_french_after_the_demo(tmp_path, monkeypatch, smtp_sink):
    for key in ("DECLIC_HOME", "DECLIC_DATABASE_URL", "DECLIC_SMTP_HOST", "DECLIC_SMTP_PORT", "DECLIC_BASE_URL",
                "DECLIC_SECRET_KEY", "PREFECT_API_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orchestrator").mkdir()
    (tmp_path / "orchestrator" / "samples").symlink_to(ROOT / "orchestrator" / "samples")
    monkeypatch.setenv("DECLIC_HOME", "var")
    monkeypatch.setenv("COLUMNS", "250")  # rich tables unabridged: every cell is read whole
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--businesses", "400", "--events", "80"])
    assert demo.exit_code == 0, demo.output
    assert not problems(demo.output), problems(demo.output)
    # The demo exported its own database and SMTP sink (stopped now): the README's reader has neither.
    for key in ("DECLIC_DATABASE_URL", "DECLIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DECLIC_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DECLIC_SMTP_PORT", str(smtp_sink.port))

    found = {}
    for command in readme_commands():
        words = shlex.split(command)
        if words[0] == "export":
            key, value = words[1].split("=", 1)
            monkeypatch.setenv(key, value)
            continue
        assert words[0] == "declic", command
        args = words[1:]
        if args[:1] == ["serve"]:
            args = ["serve", "--help"]  # it blocks: its help is what a person reads first
        # `users add` asks for the password twice (typed, never on the command line).
        result = runner.invoke(app, args, input="mot-de-passe-solide\nmot-de-passe-solide\n")
        # `templates lint` exits 1 when a template has an error: what it finds is tested by tests/unit/test_lint*;
        # here only its words are.
        assert result.exit_code == 0 or (args[:2] == ["templates", "lint"] and result.exit_code == 1), \
            f"{command}\n{result.output}"
        bad = problems(result.output)
        if bad:
            found[command] = bad
    # The README reports on a campaign it just created (nobody reached yet): the demo's own campaign has every
    # breakdown filled (trades, départements, EPCI, communes).
    result = runner.invoke(app, ["report", "--campaign", "bienvenue-createurs-35", "--format", "table"])
    assert result.exit_code == 0 and "Bâtiment" in result.output, result.output
    if problems(result.output):
        found["declic report --campaign bienvenue-createurs-35"] = problems(result.output)
    assert not found, "\n".join(f"{c}:\n  " + "\n  ".join(b) for c, b in found.items())
