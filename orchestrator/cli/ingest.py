"""Command line of the doors in: `declic ingest sirene|sirene-ul|bodacc PATH`, `declic events import FILE`,
`declic deadlines`.

Every command prints a summary a person can act on, or with `--json` one object
`{"read": N, "accepted": N, "rejected": {...}, "events": {...}}` (read = accepted + rejected);
`--rejects FILE` writes each rejected line with its line number, field and reason. A Rich progress bar
shows on long files when the output is a terminal. `register(app)` mounts them on the main app.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import InterfaceError, OperationalError

from orchestrator.app.bootstrap import App, bootstrap
from orchestrator.app.ingest import emit_deadlines, import_partner_file, ingest_bodacc, ingest_sirene, ingest_sirene_ul
from orchestrator.cli.errors import CliError
from orchestrator.core.labels import count_fr, event_count, ingest_note, reject_reason
from triggers.bodacc import BodaccFormatError
from triggers.calendar import CalendarError, load_deadlines
from triggers.model import Reject
from triggers.partner_csv import PartnerFileError
from triggers.report import IngestReport, RejectSink
from triggers.sirene import SireneFormatError
from triggers.sirene_parser import SireneParserError

try:  # the PostgreSQL driver, when installed: the COPY of the Sirene ingest talks to it directly
    import psycopg
except ImportError:  # pragma: no cover - SQLite-only installs
    psycopg = None  # type: ignore[assignment]

ingest_app = typer.Typer(help="Lire les fichiers ouverts (Sirene, BODACC) dans la base.", no_args_is_help=True)
events_app = typer.Typer(help="Événements des partenaires, par fichier.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="un objet JSON (clés stables, en anglais) au lieu du résumé")]
RejectsOpt = Annotated[
    Path | None, typer.Option("--rejects", help="écrire les lignes refusées dans ce fichier (ligne, champ, "
        "raison, contenu)")
]
TodayOpt = Annotated[
    str | None, typer.Option("--today", help="date de référence (AAAA-MM-JJ), par défaut aujourd'hui")
]


def register(app: typer.Typer) -> None:
    """Mount `ingest`, `events` and `deadlines` on the main `declic` app."""
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(events_app, name="events")
    app.command("deadlines")(deadlines)


def _app() -> App:
    """The App of the composition root (settings, engine, clock, zone), as every command builds it."""
    return bootstrap()


def _today(app: App, value: str | None) -> dt.date:
    """`--today` as a date; without it, today in the App's zone by the App's clock."""
    if not value:
        return app.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CliError(f"Date illisible pour --today : « {value} ».", "Format attendu : AAAA-MM-JJ, par exemple "
            "2026-12-04.") from None


@contextlib.contextmanager
def _rejects_sink(path: Path | None) -> Iterator[RejectSink | None]:
    if path is None:
        yield None
        return
    with open(path, "w", encoding="utf-8", newline="") as fh:
        yield FrenchRejectSink(fh)


class FrenchRejectSink(RejectSink):
    """The `--rejects` file a person opens: each reason in the same French words as the partner intake."""

    def write(self, reject: Reject) -> None:
        super().write(Reject(line=reject.line, field=reject.field, reason=reject_reason(reject.reason),
                             raw=reject.raw))


def fr_summary(report: IngestReport) -> str:
    """The ingest report in French: "lues 10, acceptées 4, refusées 6", then the reasons."""
    lines = [f"lues {count_fr(report.read)}, acceptées {count_fr(report.accepted)}, "
             f"refusées {count_fr(report.rejected_total)}"
             + (f", enregistrées {count_fr(report.stored)}" if report.stored else "")]
    for title, counter, words in (("refusées", report.rejected, reject_reason),
                                  ("événements", report.events, event_count),
                                  ("ignorées", report.skipped, ingest_note)):
        if +counter:
            parts = ", ".join(f"{words(k)} : {count_fr(v)}" for k, v in (+counter).most_common())
            lines.append(f"  {title} : {parts}")
    return "\n".join(lines)


@contextlib.contextmanager
def _progress(label: str, total: int | None, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar when stdout is a terminal; yields the `advance(n)` callback (or None)."""
    if not enabled or not sys.stdout.isatty():
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _estimate_rows(path: Path) -> int | None:
    # Why an estimate: counting lines would read the file twice; the first megabyte tells the
    # average line length of a plain CSV (compressed files get an open-ended bar).
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b" or head[:4] == b"PK\x03\x04" or not head.count(b"\n"):
        return None
    return max(1, int(path.stat().st_size / (len(head) / head.count(b"\n"))))


def _finish(report: IngestReport, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        console.print(f"[bold]{title}[/bold]")
        console.print(fr_summary(report), markup=False, highlight=False)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]Erreur :[/red] {message}", highlight=False)
    raise typer.Exit(code=code)


DATABASE_LOST = 3  # exit code: the database did not answer (the file itself was fine so far)


class _Reached:
    """Counts the rows the ingest has handled and committed (its progress callback), for the bar too."""

    def __init__(self, bar: Any) -> None:
        self.rows, self.bar = 0, bar

    def __call__(self, n: int) -> None:
        self.rows += n
        if self.bar:
            self.bar(n)


# SQLAlchemy wraps what goes through it; the PostgreSQL COPY of the Sirene ingest talks to the driver.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, *((psycopg.OperationalError, psycopg.InterfaceError) if psycopg else ()))


@contextlib.contextmanager
def _database_guard(path: Path, reached: _Reached, unit: str = "ligne") -> Iterator[None]:
    """A lost or unreachable database ends the command with a French sentence, not a traceback."""
    try:
        yield
    except CONNECTION_ERRORS:
        if reached.rows == 0:
            _fail(
                f"la base de données ne répond pas ou a coupé la connexion avant la fin du premier lot: "
                f"rien n'a été importé de {path.name}. Vérifiez DECLIC_DATABASE_URL et que la base répond, "
                "puis relancez la même commande.",
                DATABASE_LOST,
            )
        line = reached.rows + 1 if unit == "ligne" else reached.rows
        where = f"la ligne {line} (en-tête compris)" if unit == "ligne" else f"l'annonce {line}"
        _fail(
            f"connexion à la base de données perdue pendant l'import de {path.name}, arrêt après {where}: "
            f"les {reached.rows} premières {unit}s sont enregistrées, le lot en cours ne l'est pas. Relancez la même "
            "commande quand la base répond de nouveau: l'import reprend sans rien doubler.",
            DATABASE_LOST,
        )


def _run_ingest(
    path: Path,
    ingest: Callable[[RejectSink | None, Callable[[int], None]], IngestReport],
    *,
    label: str,
    title: str,
    as_json: bool,
    rejects: Path | None,
    refused: tuple[type[Exception], ...],
    said: Callable[[Exception], str] = str,
    estimate: bool = True,
    unit: str = "ligne",
) -> None:
    """What every file command does around its ingest: the file must exist; rejected lines go to `--rejects`; a
    progress bar; a lost database or a refused file (`refused`, told by `said`) ends with a French sentence; the
    report is printed. `ingest(sink, progress)` runs the ingest itself."""
    if not path.exists():
        _fail(f"fichier introuvable : {path}. Vérifiez le chemin.")
    try:
        with (
            _rejects_sink(rejects) as sink,
            _progress(label, _estimate_rows(path) if estimate else None, not as_json) as advance,
        ):
            reached = _Reached(advance)
            with _database_guard(path, reached, unit):
                report = ingest(sink, reached)
    except refused as exc:
        _fail(said(exc))
    _finish(report, as_json, title)


def _sirene_refused(exc: Exception) -> str:
    if isinstance(exc, SireneParserError):  # not the file's fault: what was written stays, a rerun completes it
        return f"{exc}. Les lots déjà écrits sont gardés : relancez la même commande, elle reprend sans doublon."
    # A damaged archive says "rien n'a été importé" itself; a file refused midway keeps what it committed.
    return str(exc) if "rien n'a été importé" in str(exc) else f"{exc}. Rien n'a été modifié pour les lignes non lues."


@ingest_app.command("sirene")
def ingest_sirene_cmd(
    path: Annotated[
        Path,
        typer.Argument(
            help="fichier StockEtablissement (CSV de 48, 53 ou 54 colonnes), brut, .gz ou .zip ; un fichier "
            "StockUniteLegale est reconnu à son en-tête et lu comme « sirene-ul »"
        ),
    ],
    as_json: JsonOpt = False,
    rejects: RejectsOpt = None,
    today: TodayOpt = None,
    creation_window: Annotated[
        int, typer.Option(help="jours : un établissement créé plus récemment est une création à signaler")
    ] = 90,
    parallel: Annotated[
        bool | None, typer.Option(help="lire dans un second processus (par défaut : pour les gros fichiers)")
    ] = None,
) -> None:
    """Lire un stock Sirene ou une mise à jour quotidienne : TPE, créations, premières embauches, fermetures."""
    app = _app()
    _run_ingest(
        path,
        lambda sink, progress: ingest_sirene(app.engine, path, today=_today(app, today), now=app.now(),
                                             creation_window_days=creation_window, parallel=parallel, rejects=sink,
                                             progress=progress),
        label="Sirene", title=f"Sirene : {path.name}", as_json=as_json, rejects=rejects,
        refused=(SireneFormatError, SireneParserError), said=_sirene_refused,
    )


@ingest_app.command("sirene-ul")
def ingest_sirene_ul_cmd(
    path: Annotated[
        Path, typer.Argument(help="fichier StockUniteLegale (unités légales de l'INSEE), brut, .gz ou .zip")
    ],
    as_json: JsonOpt = False,
    rejects: RejectsOpt = None,
) -> None:
    """Lire le stock des unités légales Sirene : la catégorie (PME, ETI, GE) de chaque entreprise connue, qui fixe
    ses dates de facturation électronique. À lancer après « declic ingest sirene », qu'il complète."""
    app = _app()
    _run_ingest(
        path,
        lambda sink, progress: ingest_sirene_ul(app.engine, path, now=app.now(), rejects=sink,
                                                progress=progress),
        label="Sirene unités légales", title=f"Sirene, unités légales : {path.name}", as_json=as_json,
        rejects=rejects, refused=(SireneFormatError,), said=_sirene_refused,
    )


@ingest_app.command("bodacc")
def ingest_bodacc_cmd(
    path: Annotated[
        Path, typer.Argument(help="annonces commerciales du BODACC : tableau JSON, lignes JSON ou export CSV")
    ],
    as_json: JsonOpt = False,
    rejects: RejectsOpt = None,
    today: TodayOpt = None,
) -> None:
    """Lire les annonces du BODACC : reprises, créations, procédures collectives, radiations."""
    app = _app()
    _run_ingest(
        path,
        lambda sink, progress: ingest_bodacc(app.engine, path, today=_today(app, today), now=app.now(),
                                             rejects=sink, progress=progress),
        label="BODACC", title=f"BODACC : {path.name}", as_json=as_json, rejects=rejects,
        refused=(BodaccFormatError,), estimate=False, unit="annonce",
    )


@events_app.command("import")
def events_import_cmd(
    file: Annotated[Path, typer.Argument(help="fichier CSV du partenaire (colonnes décrites dans le README)")],
    partner: Annotated[
        str, typer.Option("--partner", help="nom du partenaire, tel que créé par « declic partners add »")
    ],
    as_json: JsonOpt = False,
    rejects: RejectsOpt = None,
) -> None:
    """Importer les événements d'un partenaire depuis un fichier CSV (mêmes contrôles que l'API, sans doublon)."""
    app = _app()
    _run_ingest(
        file,
        lambda sink, progress: import_partner_file(app.engine, file, partner=partner, today=app.today(), now=app.now(),
                                                   rejects=sink, progress=progress,
                                                   secret=app.settings.resolved_secret),
        label="Événements", title=f"Événements de {partner} : {file.name}", as_json=as_json, rejects=rejects,
        refused=(PartnerFileError, LookupError), said=lambda exc: str(exc).strip("'\""),
    )


def deadlines(
    today: TodayOpt = None,
    offsets: Annotated[
        str, typer.Option(help="jours avant chaque échéance, séparés par des virgules")
    ] = "270,180,90,30",
    file: Annotated[
        Path | None, typer.Option("--file", help="un fichier YAML d'échéances au lieu de celui fourni")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Émettre les rappels d'échéances réglementaires du jour, une fois par échéance, délai et entreprise."""
    try:
        days = tuple(sorted({int(o) for o in offsets.split(",") if o.strip()}, reverse=True))
    except ValueError:
        raise CliError(f"--offsets illisible : « {offsets} ».", "Donnez des nombres de jours séparés par des "
            "virgules, par exemple 270,180,90,30.") from None
    try:
        items = load_deadlines(file)
    except (CalendarError, OSError) as exc:
        _fail(str(exc))
    app = _app()
    day = _today(app, today)
    run = emit_deadlines(app.engine, today=day, now=app.now(), offsets=days, deadlines=items)
    if as_json:
        out = run.report.to_dict()
        out["due"] = [{"deadline": d.id, "date": d.date.isoformat(), "offset_days": o} for d, o in run.due]
        print(json.dumps(out, ensure_ascii=False))
        return
    if not run.due:
        console.print("Aucun rappel d'échéance à émettre aujourd'hui.")
        upcoming = sorted((d for d in items if d.date >= day), key=lambda d: d.date)
        for d in upcoming:
            console.print(f"  à venir : {d.date.isoformat()}  {d.title}", highlight=False)
        return
    for d, o in run.due:
        console.print(f"Rappel J-{o} : {d.title} ({d.date.isoformat()})", highlight=False)
    console.print(fr_summary(run.report), markup=False, highlight=False)
