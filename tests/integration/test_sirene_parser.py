"""The Sirene parser's own process (`triggers.sirene_parser`): what it imports, how it ends with either side."""

from __future__ import annotations

import csv
import marshal
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.ingest_data import sirene_rows
from triggers.sirene import COLUMNS_54, SireneFormatError
from triggers.sirene_parser import SireneParserError, parse_in_child

ROOT = Path(__file__).resolve().parents[2]


def stock(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS_54)
        writer.writerows(sirene_rows(rows, seed=3))
    return path


def parsers_of(pid: int) -> list[int]:
    """The parser processes whose parent is `pid` (from /proc; the suite's process has other children)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"triggers.sirene_parser" in command:
                out.append(int(entry.name))
    return out


def gone(pid: int, quiet_for: float = 20.0) -> bool:
    """Whether process `pid` ends (or is a zombie) within `quiet_for` seconds."""
    deadline = time.monotonic() + quiet_for
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def reaped(pid: int) -> bool:
    """Whether our child `pid` has been waited for (a zombie not waited for is still ours)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_parser_process_imports_the_parser_alone():
    # Why it is not multiprocessing's spawn: that runs the parent's main module (the CLI) again in the child.
    probe = ("import sys, triggers.sirene_parser; "
             "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'prefect', 'fastapi', 'store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_parser_process_sends_every_chunk_then_ends(tmp_path, monkeypatch):
    stock(tmp_path / "s.csv", 3000)
    monkeypatch.chdir(tmp_path)  # a path relative to the writer's directory
    read, children = 0, set()
    for kind, data in parse_in_child("s.csv", 400, True, False, None):
        assert kind == "chunk"
        read += marshal.loads(data)[2]
        children.update(parsers_of(os.getpid()))
    assert read == 3000
    [child] = children
    assert reaped(child)


def test_a_bad_file_is_reported_in_the_parser_words(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("siren,nom\n123,x\n")
    with pytest.raises(SireneFormatError, match="s.csv"):
        list(parse_in_child(path, 400, True, False, None))


def test_a_parser_process_that_dies_is_reported(tmp_path):
    chunks = parse_in_child(stock(tmp_path / "s.csv", 20_000), 200, True, False, None)
    next(chunks)
    [child] = parsers_of(os.getpid())
    os.kill(child, signal.SIGKILL)
    with pytest.raises(SireneParserError, match=r"il s'est arrêté \(code de sortie -9\)"):
        for _ in chunks:  # the chunks already in the pipe, then its end
            pass


def test_the_command_says_a_dead_parser_in_french(env_settings, tmp_path, monkeypatch):
    # The parser killed mid-file (memory, an operator): a French sentence and what to do, no traceback.
    from typer.testing import CliRunner

    import orchestrator.app.ingest as ingest_module
    from orchestrator.cli.main import app as cli

    def killed(*_args):
        yield from ()
        raise SireneParserError("il s'est arrêté (code de sortie -9)")

    monkeypatch.setattr(ingest_module, "parse_in_child", killed)
    result = CliRunner().invoke(cli, ["ingest", "sirene", str(stock(tmp_path / "s.csv", 300)), "--parallel"])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "le processus qui lit le fichier Sirene : il s'est arrêté (code de sortie -9)" in said
    assert "relancez la même commande, elle reprend sans doublon" in said


def test_a_writer_that_stops_early_stops_its_parser(tmp_path):
    chunks = parse_in_child(stock(tmp_path / "s.csv", 20_000), 200, True, False, None)
    next(chunks)
    [child] = parsers_of(os.getpid())
    # The command the parser runs: the module alone, the working directory out of its imports.
    command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    assert command[1:4] == [b"-P", b"-m", b"triggers.sirene_parser"]
    chunks.close()
    assert reaped(child)


def test_an_ingest_whose_writer_fails_stops_its_parser_at_once(engine, tmp_path, monkeypatch):
    # The exception's traceback keeps the ingest's generators alive as long as someone holds it (here
    # pytest.raises): the parser must be stopped when the loop ends, not when they are freed.
    import datetime as dt

    from orchestrator.app.ingest import SireneWriter, ingest_sirene

    running: list[int] = []

    def fail(*_args):
        running.extend(parsers_of(os.getpid()))
        raise OSError("disque plein")

    monkeypatch.setattr(SireneWriter, "write_new", fail)
    monkeypatch.setattr(SireneWriter, "write", fail)
    with pytest.raises(OSError, match="disque plein") as raised:  # held, with its traceback, to the end
        ingest_sirene(engine, stock(tmp_path / "s.csv", 20_000), today=dt.date(2026, 11, 27),
                      now=dt.datetime.now(dt.UTC), parallel=True, chunk_size=200)
    assert len(running) == 1 and reaped(running[0])
    assert raised.traceback  # the ingest's frame, and the generators it held, still there


RUNNER = """
import sys, time
from triggers.sirene_parser import parse_in_child
chunks = parse_in_child(sys.argv[1], 200, True, False, None)
next(chunks)
print("reading", flush=True)
time.sleep(120)
"""


def test_a_killed_writer_leaves_no_parser_behind(tmp_path):
    # SIGKILL gives the writer no chance to stop its parser: the parser finds the pipe closed at its next chunk.
    path = stock(tmp_path / "s.csv", 20_000)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "reading"
        [child] = parsers_of(proc.pid)
        proc.kill()
        proc.wait(30)
        assert gone(child)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
