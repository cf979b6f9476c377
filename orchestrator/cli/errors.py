"""Errors as sentences: what went wrong, where, and what to do, in French, exit code 2 (`--debug` shows the
traceback).

`DeclicGroup` is the click group of the `declic` app: it runs every sub-command and turns the expected failures
(missing or unreadable file, malformed YAML or CSV, invalid campaign, database or Prefect server out of reach,
busy port) into one or two sentences. `CliError` is what a command raises when it knows the sentence itself.
`pydantic_fr` rewrites a validation error field by field. `french_cli()` puts click's and Typer's own words
(usage, help panels, usage errors) into French.
"""

from __future__ import annotations

import csv
import errno
import importlib
import os
import pkgutil
from typing import Any

import click
import typer
import typer._click as vendored
import typer._click.decorators as vendored_decorators
import typer._click.exceptions as vendored_exceptions
import typer.rich_utils as ru
import yaml
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from typer.core import TyperGroup

from orchestrator.app.settings import get_settings

EXIT_MISTAKE = 2


class CliError(Exception):
    """An expected failure with its French sentence(s): what is wrong (and where), then what to do."""
    def __init__(self, what: str, todo: str | None = None) -> None:
        super().__init__(what)
        self.what, self.todo = what, todo

    def __str__(self) -> str:
        return f"{self.what} {self.todo}" if self.todo else self.what


# --- pydantic validation errors, field by field --------------------------------------------------------------

_TYPES = {
    "string_type": "doit être un texte",
    "int_type": "doit être un nombre entier",
    "int_parsing": "doit être un nombre entier",
    "int_from_float": "doit être un nombre entier",
    "float_type": "doit être un nombre",
    "float_parsing": "doit être un nombre",
    "bool_type": "doit être oui ou non (true/false)",
    "bool_parsing": "doit être oui ou non (true/false)",
    "list_type": "doit être une liste",
    "dict_type": "doit être un ensemble de clés (name: valeur...)",
    "model_type": "doit être un ensemble de clés (name: valeur...)",
    "model_attributes_type": "doit être un ensemble de clés (name: valeur...)",
    "date_type": "doit être une date AAAA-MM-JJ",
    "date_parsing": "doit être une date AAAA-MM-JJ",
    "date_from_datetime_parsing": "doit être une date AAAA-MM-JJ",
    "datetime_type": "doit être une date et une heure (AAAA-MM-JJTHH:MM)",
    "datetime_parsing": "doit être une date et une heure (AAAA-MM-JJTHH:MM)",
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ inconnu (faute de frappe ? à retirer)",
    "url_parsing": "doit être une adresse web",
    "none_required": "doit être vide",
}


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"n° {item + 1}")
        elif not str(item).startswith(("function-", "union[", "tagged-union[", "literal[")):
            parts.append(str(item))
    return " → ".join(parts) or "le document"


def _message(err: dict[str, Any]) -> str:
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind in _TYPES:
        return _TYPES[kind]
    if kind in ("literal_error", "enum"):
        return f"valeur « {err.get('input')} » refusée (attendu : {ctx.get('expected', '?')})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        word = {"greater_than": "supérieur à", "greater_than_equal": "au moins", "less_than": "inférieur à",
                "less_than_equal": "au plus"}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"doit valoir {word} {bound} (reçu : {err.get('input')})"
    if kind in ("string_too_long", "too_long"):
        return f"trop long (au plus {ctx.get('max_length', '?')})"
    if kind in ("string_too_short", "too_short"):
        return f"trop court (au moins {ctx.get('min_length', '?')})"
    if kind == "string_pattern_mismatch":
        return f"forme refusée : « {err.get('input')} »"
    if kind in ("value_error", "assertion_error") and ctx.get("error") is not None:
        return str(ctx["error"])
    return str(err.get("msg", "valeur refusée")).removeprefix("Value error, ")


def pydantic_fr(exc: Any, lines: dict[tuple[Any, ...], int] | None = None) -> str:
    """A pydantic ValidationError as French lines, one per field: "- steps → n° 2 → channel (ligne 14) : ..."."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc") or ())
        line = (lines or {}).get(loc)
        where = _where(loc) + (f" (ligne {line})" if line else "")
        out.append(f"- {where} : {_message(err)}")
    return "\n".join(out)


def yaml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Each key path of a YAML document -> its line (1-based), to say where a refused field is."""
    found: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        found[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                found[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
                found[(*path, key.value)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return found
    if root is not None:
        walk(root, ())
    return found


# --- expected failures in general ------------------------------------------------------------------------------

def safe_url(url: str) -> str:
    """The database URL to show, its password hidden ("?" when it cannot be read)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unreadable URL is shown as "?"
        return "?"


def _database_url() -> str:
    try:
        return safe_url(get_settings().resolved_database_url)
    except Exception:  # noqa: BLE001
        return "?"


def explain(exc: BaseException) -> CliError | None:
    """The French sentences for an expected failure, None for a real bug (which keeps its traceback)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return CliError(f"Fichier introuvable : {exc.filename or exc}.",
                        "Vérifiez le chemin (relatif au dossier où vous lancez la commande).")
    if isinstance(exc, IsADirectoryError):
        return CliError(f"{exc.filename} est un dossier, pas un fichier.", "Donnez le chemin d'un fichier.")
    if isinstance(exc, PermissionError):
        return CliError(f"Accès refusé à {exc.filename or 'un fichier'}.",
                        "Vérifiez les droits du fichier ou du dossier.")
    if isinstance(exc, UnicodeDecodeError):
        return CliError("Le fichier n'est pas un texte UTF-8.",
                        "Enregistrez-le en UTF-8 (dans un tableur : « CSV UTF-8 ») et relancez.")
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f" ligne {mark.line + 1}, colonne {mark.column + 1}" if mark is not None else ""
        name = getattr(mark, "name", "") if mark is not None else ""
        source = f" dans {name}" if name and not name.startswith("<") else ""
        problem = yaml_problem(exc)
        return CliError(f"YAML illisible{source},{where} : {problem}.",
                        "Vérifiez l'indentation (des espaces, pas de tabulations) et les deux-points.")
    if isinstance(exc, csv.Error):
        return CliError(f"CSV illisible : {exc}.", "Vérifiez le séparateur (;) et les guillemets.")
    if isinstance(exc, ValidationError):
        return CliError("Données refusées :\n" + pydantic_fr(exc), "Corrigez ces champs et relancez.")
    if isinstance(exc, OperationalError | ProgrammingError):
        text = str(exc.orig if isinstance(exc, DBAPIError) else exc).lower()
        if "no such table" in text or "does not exist" in text or "undefinedtable" in text:
            return CliError(f"La base de données n'est pas prête ({_database_url()}) : une table manque.",
                            "Lancez « declic init » pour la créer ou la mettre à jour.")
        if isinstance(exc, OperationalError):
            return CliError(f"La base de données ne répond pas ({_database_url()}).",
                            "Vérifiez DECLIC_DATABASE_URL et que le serveur de base de données tourne.")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return CliError("Le port demandé est déjà utilisé par un autre programme.",
                        "Arrêtez-le ou choisissez un autre port (--port, --prefect-port).")
    name = f"{type(exc).__module__}.{type(exc).__name__}"
    if ("httpx" in name and "Connect" in name) or "Failed to reach API" in str(exc) or (
            name.startswith("requests.") and "Connection" in name):
        where = os.environ.get("PREFECT_API_URL") or "l'API Prefect"
        return CliError(f"Le serveur Prefect ne répond pas ({where}).",
                        "Lancez « declic serve », ou retirez PREFECT_API_URL pour tout faire dans ce processus.")
    return None


class DeclicGroup(TyperGroup):
    """The `declic` group: every sub-command's expected failures end in French sentences and exit code 2."""
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, typer.Exit):
            raise
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("DECLIC_DEBUG"):
                raise
            known = explain(exc)
            if known is None:
                raise
            say(known)
            raise typer.Exit(EXIT_MISTAKE) from None


def say(error: CliError) -> None:
    """Print the sentences on stderr."""
    console = Console(stderr=True)
    console.print(f"[red]Erreur :[/red] {error.what}", highlight=False, markup=True, soft_wrap=True)
    if error.todo:
        console.print(error.todo, highlight=False, markup=False, soft_wrap=True)


# --- click's and Typer's own words ---------------------------------------------------------------------------

FRENCH = {
    "Show this message and exit.": "Afficher cette aide et quitter.",
    "Usage:": "Utilisation :",
    "Options": "Options",
    "Commands": "Commandes",
    "Arguments": "Arguments",
    "Error": "Erreur",
    "Aborted.": "Abandon.",
    "Aborted!": "Abandon.",
    "[default: {}]": "[défaut : {}]",
    "[required]": "[obligatoire]",
    "[env var: {}]": "[variable d'environnement : {}]",
    "(deprecated) ": "(obsolète) ",
    "Try [blue]'{command_path} {help_option}'[/] for help.":
        "Essayez [blue]« {command_path} {help_option} »[/] pour l'aide.",
    "Try {command!r} for help.": "Essayez « {command} » pour l'aide.",
    "Try '{command} {option}' for help.": "Essayez « {command} {option} » pour l'aide.",
    "Missing argument": "Argument manquant",
    "Missing option": "Option manquante",
    "Missing parameter": "Paramètre manquant",
    "Missing {param_type}": "{param_type} manquant",
    "Missing {param_type} {param_hint}.": "{param_type} manquant : {param_hint}.",
    "argument": "argument",
    "option": "option",
    "parameter": "paramètre",
    "No such command {name!r}.": "Commande inconnue : {name!r}.",
    "No such option: {name}": "Option inconnue : {name}",
    "Did you mean {possibility}?": "Vouliez-vous dire {possibility} ?",
    "(Possible options: {possibilities})": "(options possibles : {possibilities})",
    "Invalid value: {message}": "Valeur refusée : {message}",
    "Invalid value for {param_hint}: {message}": "Valeur refusée pour {param_hint} : {message}",
    "Got unexpected extra argument ({args})": "Argument en trop : {args}",
    "Got unexpected extra arguments ({args})": "Arguments en trop : {args}",
    "Option {name!r} requires an argument.": "L'option {name!r} demande une valeur.",
    "{value!r} is not a valid integer.": "{value!r} n'est pas un nombre entier.",
    "{value!r} is not a valid float.": "{value!r} n'est pas un nombre.",
    "{value!r} is not a valid boolean.": "{value!r} n'est ni oui ni non.",
    "{value!r} is not one of {choices}.": "{value!r} n'est pas parmi {choices}.",
    "{value!r} is not {choice}.": "{value!r} n'est pas {choice}.",
    "Repeat for confirmation": "Confirmez",
    "Error: The two entered values do not match.": "Erreur : les deux saisies diffèrent.",
    "Error: The value you entered was invalid.": "Erreur : valeur refusée.",
    "{name} {filename!r} does not exist.": "{name} {filename!r} introuvable.",
    "File": "Fichier",
    "Path": "Chemin",
    "Directory": "Dossier",
}


def _fr(message: str) -> str:
    return FRENCH.get(message, message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _fr(singular if n == 1 else plural)


def french_cli() -> None:
    """Put click's and Typer's words into French (they ask gettext for them at each use or import)."""
    names = ["typer.core", "typer.main", "typer.rich_utils"]
    for package in (click, vendored):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if "win" not in m.name]
    for name in names:
        try:
            module = importlib.import_module(name)
        except (ImportError, AssertionError):  # a platform-only module (Windows console)
            continue
        if hasattr(module, "_"):
            module._ = _fr  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = _ngettext  # type: ignore[attr-defined]

    original_option = vendored_decorators.option

    def option(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("help") == "Show this message and exit.":
            kwargs["help"] = _fr(kwargs["help"])
        return original_option(*args, **kwargs)

    vendored_decorators.option = option  # type: ignore[assignment]
    missing = vendored_exceptions.MissingParameter
    if not getattr(missing, "_declic_fr", False):
        english = missing.format_message

        def format_message(self: Any) -> str:
            text = english(self)
            for word, french in (("argument", "Argument manquant"), ("option", "Option manquante"),
                                 ("parameter", "Paramètre manquant")):
                text = text.replace(f"Missing {word}", f"{french} :", 1)
            return text

        missing.format_message = format_message  # type: ignore[method-assign]
        missing._declic_fr = True  # type: ignore[attr-defined]
    for name in ("DEPRECATED_STRING", "DEFAULT_STRING", "ENVVAR_STRING", "REQUIRED_LONG_STRING",
                 "ARGUMENTS_PANEL_TITLE", "OPTIONS_PANEL_TITLE", "COMMANDS_PANEL_TITLE", "ERRORS_PANEL_TITLE",
                 "ABORTED_TEXT", "RICH_HELP"):
        setattr(ru, name, _fr(getattr(ru, name)))


_YAML_PROBLEMS = {
    "mapping values are not allowed here": "deux-points inattendu (une valeur contient « : » sans guillemets, ou "
                                           "l'indentation est fausse)",
    "could not find expected ':'": "deux-points manquant",
    "found character '\\t' that cannot start any token": "tabulation interdite (mettez des espaces)",
    "found undefined alias": "alias inconnu",
}


def yaml_problem(exc: Any) -> str:
    """pyyaml's problem in French words."""
    problem = str(getattr(exc, "problem", "") or "")
    for english, french in _YAML_PROBLEMS.items():
        if problem.startswith(english):
            return french
    if problem.startswith("expected"):
        return "indentation ou structure incohérente"
    return "syntaxe incorrecte"
