"""`declic campaigns list`, `declic partners list`, `declic users list`: French tables (Rich), or `--json` with
stable English keys for machines. Mounted by `mount(campaigns_app, partners_app, users_app)`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core import labels
from segments.territory import territory_label
from store.lookups import campaign_rows, partner_rows, user_rows

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="sortie JSON (clés stables, en anglais)")]


def _read(rows: Callable[..., list[Any]]) -> tuple[list[Any], ZoneInfo]:
    """What `rows` reads from the store, and the deployment's zone (where dates are shown)."""
    app = bootstrap()
    with app.transaction() as unit:
        return rows(unit.conn), unit.zone


def _print(rows: list[dict[str, Any]], json_out: bool, title: str, columns: list[tuple[str, str]], empty: str
           ) -> None:
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    if not rows:
        console.print(empty, highlight=False)
        return
    table = Table(title=title, title_justify="left")
    for _key, header in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(str(row["_fr"].get(key, row.get(key, "")) or "-") for key, _ in columns))
    console.print(table)


def campaigns_list(json_out: JsonOpt = False) -> None:
    """Les campagnes : nom, porteur, statut, version, déclencheurs, territoire et dates."""
    rows, zone = _read(campaign_rows)
    out = []
    for r in rows:
        spec = r.spec or {}
        territory = ((spec.get("segment") or {}).get("territory") or {})
        if not any(territory.values()):
            territory = (spec.get("owner") or {}).get("territory") or {}
        out.append({"id": r.id, "name": r.name, "owner": r.owner, "status": r.status, "version": r.version,
                    "triggers": spec.get("triggers") or [], "territory": territory,
                    "starts_on": r.starts_on, "ends_on": r.ends_on, "updated_at": r.updated_at,
                    "_fr": {"status": labels.label("campaign_status", r.status),
                            "triggers": ", ".join(labels.label("trigger", t) for t in spec.get("triggers") or [])
                            or "calendrier",
                            "territory": territory_label({k: v for k, v in territory.items() if v}),
                            "dates": _dates(r.starts_on, r.ends_on, zone),
                            "updated_at": labels.datetime_fr(r.updated_at, zone)}})
    _print(_strip(out, json_out), json_out, "Campagnes",
           [("name", "Nom"), ("owner", "Porteur"), ("status", "Statut"), ("version", "Version"),
            ("triggers", "Déclencheurs"), ("territory", "Territoire"), ("dates", "Dates"),
            ("updated_at", "Modifiée le")],
           "Aucune campagne (« declic campaigns apply FICHIER.yaml » en crée une).")


def _dates(start: Any, end: Any, zone: ZoneInfo) -> str:
    if start and end:
        return f"du {labels.date_fr(start, zone)} au {labels.date_fr(end, zone)}"
    if start:
        return f"à partir du {labels.date_fr(start, zone)}"
    return f"jusqu'au {labels.date_fr(end, zone)}" if end else "sans date de fin"


def partners_list(json_out: JsonOpt = False) -> None:
    """Les partenaires : types d'événements autorisés, territoire, jeton actif ou révoqué."""
    rows, zone = _read(partner_rows)
    out = []
    for r in rows:
        out.append({"id": r.id, "name": r.name, "allowed_types": list(r.allowed_types or []),
                    "territory": list(r.territory or []), "active": bool(r.active), "revoked_at": r.revoked_at,
                    "created_at": r.created_at,
                    "_fr": {"allowed_types": ", ".join(labels.label("trigger", t) for t in r.allowed_types or [])
                            or "tous",
                            "territory": territory_label(list(r.territory or [])),
                            "active": "actif" if r.active else f"révoqué le {labels.datetime_fr(r.revoked_at, zone)}",
                            "created_at": labels.datetime_fr(r.created_at, zone)}})
    _print(_strip(out, json_out), json_out, "Partenaires",
           [("name", "Nom"), ("allowed_types", "Événements autorisés"), ("territory", "Territoire"),
            ("active", "Jeton"), ("created_at", "Créé le")],
           "Aucun partenaire (« declic partners add NOM » en crée un).")


def users_list(json_out: JsonOpt = False) -> None:
    """Les comptes du tableau de bord : rôle, territoire, actif ou non, dernière connexion."""
    rows, zone = _read(user_rows)
    out = []
    for r in rows:
        territory = {k: v for k, v in (r.territory or {}).items() if v}
        out.append({"id": r.id, "email": r.email, "name": r.name, "role": r.role, "territory": territory,
                    "assignee": r.assignee, "active": bool(r.active), "last_login_at": r.last_login_at,
                    "_fr": {"role": labels.label("role", r.role),
                            "territory": territory_label(territory) if r.role == "collectivite" else "-",
                            "active": "actif" if r.active else "désactivé",
                            "last_login_at": labels.datetime_fr(r.last_login_at, zone) or "jamais"}})
    _print(_strip(out, json_out), json_out, "Comptes du tableau de bord",
           [("email", "E-mail"), ("name", "Nom"), ("role", "Rôle"), ("territory", "Territoire"),
            ("active", "État"), ("last_login_at", "Dernière connexion")],
           "Aucun compte (« declic users add E-MAIL --name NOM --role operator » en crée un).")


def _strip(rows: list[dict[str, Any]], json_out: bool) -> list[dict[str, Any]]:
    # The French cells are for people; machines get the stable keys only.
    return [{k: v for k, v in r.items() if k != "_fr"} for r in rows] if json_out else rows


def mount(campaigns_app: typer.Typer, partners_app: typer.Typer, users_app: typer.Typer) -> None:
    """Add the three `list` commands."""
    campaigns_app.command("list")(campaigns_list)
    partners_app.command("list")(partners_list)
    users_app.command("list")(users_list)
