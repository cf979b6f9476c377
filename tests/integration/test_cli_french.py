"""The CLI speaks French and says what went wrong in sentences: each command with each ordinary mistake ends with
exit code 2, a French sentence, no traceback (issue 19, points 1, 2, 3 and 7)."""

from __future__ import annotations

import datetime as dt
import re
import socket

import pytest
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app

ENGLISH = re.compile(r"\b(Traceback|Error:|Missing argument|No such|is required|not permitted|errors\.pydantic\.dev|"
                     r"created|unchanged|updated|skipped|rejected|accepted)\b")


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def assert_sentence(result) -> None:
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert "Traceback" not in text and result.exception is None or isinstance(result.exception, SystemExit), text
    assert not ENGLISH.search(text), text
    assert re.search(r"[a-zé]{3,} ", text), text  # a sentence, not a code


@pytest.fixture
def files(tmp_path):
    bad_yaml = tmp_path / "mauvais.yaml"
    bad_yaml.write_text("name: x\n  owner: [\n", encoding="utf-8")
    bad_field = tmp_path / "champ.yaml"
    bad_field.write_text("name: essai\nowner:\n  name: Ville\n  territory: {departements: ['35']}\nsteps: []\n"
                         "couleur: bleu\n", encoding="utf-8")
    bad_csv = tmp_path / "mauvais.csv"
    bad_csv.write_bytes(b"\xff\xfe\x00n\x00o\x00m")
    return {"yaml": bad_yaml, "field": bad_field, "csv": bad_csv, "missing": tmp_path / "absent.csv"}


def test_every_mistake_is_a_french_sentence(env_settings, engine, files):
    from store.migrate import upgrade

    upgrade(env_settings.resolved_database_url)
    cases = [
        ("campaigns", "apply", "nope.yaml"),
        ("campaigns", "apply", str(files["yaml"])),
        ("campaigns", "apply", str(files["field"])),
        ("campaigns", "apply"),
        ("campaigns", "pause", "inconnue"),
        ("ambassadors", "import", str(files["missing"])),
        ("offers", "import", str(files["missing"])),
        ("offers", "import", str(files["csv"])),
        ("templates", "lint", str(files["missing"])),
        ("ingest", "sirene", str(files["missing"])),
        ("events", "import", str(files["missing"]), "--partner", "bge"),
        ("segments", "preview", str(files["yaml"])),
        ("partners", "add", "bge", "--territory", "departement:999"),
        ("partners", "add", "bge", "--territory", "Saint-Denis"),
        ("partners", "add", "bge", "--types", "inconnu"),
        ("users", "add", "a@exemple.fr", "--name", "A", "--role", "collectivite", "--territory", "canton:35",
         "--password", "0123456789ab"),
        ("barometre", "--territory", "departement:999"),
        ("commande-inconnue",),
    ]
    for args in cases:
        result = run(*args)
        assert_sentence(result)


def test_the_refused_field_is_named_with_its_line(env_settings, files):
    result = run("campaigns", "apply", str(files["field"]))
    assert "couleur (ligne 6) : champ inconnu" in result.output, result.output
    assert "pydantic" not in result.output


def test_an_unreachable_database_is_a_sentence(env_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("DECLIC_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    from orchestrator.app.settings import get_settings

    get_settings.cache_clear() if hasattr(get_settings, "cache_clear") else None
    result = run("campaigns", "list")
    assert_sentence(result)
    assert "base de données ne répond pas" in result.output


def test_debug_shows_the_traceback(env_settings):
    from orchestrator.cli.errors import CliError

    assert run("campaigns", "pause", "inconnue").exception is None or run(
        "campaigns", "pause", "inconnue").exit_code == 2
    result = run("--debug", "campaigns", "pause", "inconnue")
    assert isinstance(result.exception, CliError)  # raised as is: the traceback is there for a developer
    result = run("--debug", "ambassadors", "import", "absent.csv")
    assert isinstance(result.exception, FileNotFoundError)


def test_serve_on_a_busy_port_is_a_sentence(env_settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert_sentence(result)
    assert f"Le port {port}" in result.output


def test_help_is_french(env_settings):
    for args in ((), ("campaigns",), ("ingest",), ("feeds",), ("templates",), ("users",), ("partners",)):
        result = run(*args, "--help")
        assert result.exit_code == 0
        assert "Show this message" not in result.output and "Commands" not in result.output, result.output
        assert "Afficher cette aide" in result.output


def test_lists_apply_and_territory_by_name(env_settings, engine, monkeypatch):
    from orchestrator.cli import lists as cli_lists
    from store.migrate import upgrade
    from store.reference import load_reference

    monkeypatch.setattr(cli_lists.console, "width", 240)  # one line per row, whatever the test's terminal

    upgrade(env_settings.resolved_database_url)
    load_reference(engine)
    assert "créée" in run("campaigns", "apply", "orchestrator/samples/parcours-batiment-35.yaml").output
    assert "inchangée" in run("campaigns", "apply", "orchestrator/samples/parcours-batiment-35.yaml").output
    result = run("campaigns", "list")
    assert result.exit_code == 0 and "en cours" in result.output
    assert run("campaigns", "list", "--json").output.startswith('[{"id": ')

    assert run("partners", "add", "bge", "--territory", "Rennes Métropole, departements:35").exit_code == 0
    listed = run("partners", "list", "--json").output
    assert '"territory": ["epci:243500139", "departement:35"]' in listed
    assert "Rennes Métropole" in run("partners", "list").output

    result = run("users", "add", "agent@exemple.fr", "--name", "Agent", "--role", "collectivite", "--territory",
                 "Bruz", "--password", "0123456789ab")
    assert result.exit_code == 0 and "collectivité" in result.output
    assert '"territory": {"communes": ["35047"]}' in run("users", "list", "--json").output
    assert "Bruz (commune 35047)" in run("users", "list").output


def test_status_finds_the_local_prefect_server_and_names_unconfigured_channels(env_settings, engine, monkeypatch):
    from orchestrator.cli.status import collect
    from orchestrator.prefect.serve import write_api_url

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("DECLIC_SMS_URL", raising=False)
    write_api_url(env_settings.home, "http://127.0.0.1:9/api")
    report = collect(bootstrap(env_settings), dt.datetime.now(dt.UTC))
    assert "127.0.0.1:9" in report["prefect"]["note"]
    assert "sms" in report["unconfigured_channels"]
    result = run("status")
    assert "Canal SMS non configuré : il manque DECLIC_SMS_URL" in result.output
