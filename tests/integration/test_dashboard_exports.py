"""Issue 19, points 1, 5 and 6 (dashboard side): exports that open in a French spreadsheet with the numbers of
`declic report`, the whole report as an .xlsx workbook, and the campaign page at a glance (effect in words, a
tile map of the territory, trades, breakdowns folded with their top ten rows), dates and labels in French."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from orchestrator.core.stats import uplift
from store.accounts import add_user
from tests.integration.test_web_dashboard import PASSWORD, signed_in
from tests.utils.outreach import business, enrol, seed_funnel
from web.app import create_app
from web.dashboard import effect_sentence, fr_delay, territory_label
from web.exports import fr_datetime, shown_columns, text_cell

# Twelve communes of Ille-et-Vilaine besides Rennes: more rows than the page shows in a folded breakdown.
COMMUNES = ["35047", "35051", "35066", "35093", "35115", "35173", "35206", "35210", "35240", "35281", "35288",
            "35360"]


@pytest.fixture
def world(engine):
    rennes = seed_funnel(engine)
    with engine.begin() as conn:
        for i, code in enumerate(COMMUNES):
            enrol(conn, rennes.campaign_id, business(conn, code, name=f"Atelier {i}"))
    add_user(engine, email="agent@ille-et-vilaine.fr", name="Département d'Ille-et-Vilaine", password=PASSWORD,
             role="collectivite", territory={"departements": ["35"]}, now=dt.datetime.now(dt.UTC))
    return rennes


@pytest.fixture
def client(settings, engine, world):
    return signed_in(create_app(bootstrap(settings)), "agent@ille-et-vilaine.fr")


def _cli_report(table: str | None = None) -> dict:
    args = ["report", "-c", "bienvenue-35", "-f", "json"] + (["--table", table] if table else [])
    printed = CliRunner().invoke(cli, args)
    assert printed.exit_code == 0, printed.output
    return json.loads(printed.output)


def _number(cell: str, kind: str) -> float:
    """A French spreadsheet's reading of a cell: "12,5 %" -> 0.125, "3,1" -> 3.1."""
    assert "." not in cell and "\u202f" not in cell, cell
    if kind == "pct":
        assert cell.endswith(" %"), cell
        return float(cell[:-2].replace(",", ".")) / 100
    return float(cell.replace(",", "."))


def _tables(engine) -> dict:
    from store.report import campaign_by_name, report

    with engine.connect() as conn:
        return {t.key: t for t in report(engine, campaign_by_name(conn, "bienvenue-35")).tables}


def test_each_table_csv_opens_in_french_excel_with_the_numbers_of_declic_report(client, engine, world,
                                                                                 env_settings):
    data = _cli_report()
    tables = _tables(engine)
    checked = 0
    for key, table in data["tables"].items():
        reply = client.get(f"/tableau/campagnes/{world.campaign_id}/export/{key}.csv")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
        assert reply.content.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte-order mark"
        rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig")), delimiter=";"))
        header, body = rows[0], rows[1:]
        columns, kinds = shown_columns(tables[key]), tables[key].kinds
        assert header == [h for _, h in columns], key
        assert len(body) == len(table["rows"]), key
        for exported, expected in zip(body, table["rows"], strict=True):
            for (col, _), cell in zip(columns, exported, strict=True):
                value, kind = expected[col], kinds.get(col, "text")
                if value is None:
                    assert cell == "", (key, col, cell)
                elif kind == "int":
                    assert cell == str(value), (key, col)
                    checked += 1
                elif kind in ("pct", "pts", "days"):
                    target = value * 100 if kind == "pts" else value
                    assert abs(_number(cell, kind) - target) <= (0.0005 if kind == "pct" else 0.05), (key, col)
                    checked += 1
                else:
                    assert cell == text_cell(value), (key, col)
    assert checked > 50
    # The effect as on the screen ("+10,0 pts" -> "10,0" under "Effet (points)"), not 0.1; a rate as "20,0 %".
    uplift_rows = list(csv.reader(io.StringIO(client.get(
        f"/tableau/campagnes/{world.campaign_id}/export/uplift.csv").content.decode("utf-8-sig")), delimiter=";"))
    assert uplift_rows[0][7] == "Effet (points)" and re.fullmatch(r"-?\d+,\d", uplift_rows[1][7])
    assert "Valeur" not in open_csv(client, world, "by_metier_family")[0]
    assert open_csv(client, world, "by_commune_code")[0][0] == "Code INSEE"


def open_csv(client, world, key: str) -> list[list[str]]:
    text = client.get(f"/tableau/campagnes/{world.campaign_id}/export/{key}.csv").content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_the_workbook_holds_the_whole_report_with_the_same_numbers(client, engine, world, env_settings):
    from openpyxl import load_workbook

    reply = client.get(f"/tableau/campagnes/{world.campaign_id}/rapport.xlsx")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(reply.content))
    data, tables = _cli_report(), _tables(engine)
    assert book.sheetnames[0] == "Campagne" and len(book.sheetnames) == 1 + len(data["tables"])
    first = {r[0]: r[1] for r in book["Campagne"].iter_rows(values_only=True)}
    assert first["Portée (entreprises ciblées, groupe témoin compris)"] == 27
    for sheet, (key, table) in zip(book.worksheets[1:], data["tables"].items(), strict=True):
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][0] == table["title"]
        columns, kinds = shown_columns(tables[key]), tables[key].kinds
        assert list(rows[1][: len(columns)]) == [h for _, h in columns]
        for got, expected in zip(rows[2:], table["rows"], strict=True):
            for i, (col, _) in enumerate(columns):
                value, kind = expected[col], kinds.get(col, "text")
                if value is None:
                    assert got[i] is None
                elif kind == "pts":
                    assert got[i] == pytest.approx(value * 100, abs=1e-3), (key, col)
                elif kind in ("int", "pct", "days"):
                    assert got[i] == pytest.approx(value, abs=1e-5), (key, col)
        for i, (col, _) in enumerate(columns):
            if kinds.get(col) == "pct" and len(rows) > 2:
                assert sheet.cell(row=3, column=i + 1).number_format == "0.0%"


def test_the_campaign_page_at_a_glance(client, world):
    page = client.get(f"/tableau/campagnes/{world.campaign_id}").text
    glance = page[page.index('<section class="glance"'):page.index("</section>")]
    # Reach = to contact + control group, said in words beside the funnel's "ciblées".
    assert "<strong>27</strong>" in glance and "22 à contacter + 5 en groupe témoin" in glance
    assert "Les 22 entreprises « ciblées » de l'entonnoir" in page
    # The effect and its interval in words (2 of 22 contacted converted, 1 of 5 in the control group).
    u = uplift(2, 22, 1, 5)
    assert effect_sentence(u) in glance and "effet incertain" in glance
    # A tile map of the département's EPCI, each tile with a <title>, a legend, and a table alternative.
    svg = re.search(r'<svg class="chart map".*?</svg>', glance, re.S).group(0)
    assert "Rennes Métropole : " in svg and svg.count('<g class="tile"><title>') >= 18
    assert "Taux de conversion :" in svg and '<table id="t-carte">' in glance
    assert 'aria-labelledby="trades-title"' in glance and "Bâtiment" in glance
    # The breakdowns folded (no "open"), their top ten rows on the page, the rest in the CSV.
    folded = re.search(r'<details class="breakdown" id="detail-by_commune_code">.*?</details>', page, re.S).group(0)
    assert "<details open" not in page
    assert folded.count("<tr>") == 1 + 10 and "Télécharger les 13 lignes" in folded
    assert f'/tableau/campagnes/{world.campaign_id}/export/by_commune_code.csv' in folded
    # Every figure's definition one hover (abbr) or one tap (the glossary) away; no code shown for a family.
    assert glance.count("<abbr title=") >= 4 and '<details id="definitions"' in page
    assert ">batiment<" not in page


def test_dates_delays_and_territories_in_french():
    paris = ZoneInfo("Europe/Paris")
    assert fr_datetime(dt.datetime(2026, 12, 4, 21, 59, 50, tzinfo=dt.UTC), paris) == "4 déc. 2026, 22 h 59"
    assert fr_datetime("2026-07-01T06:05:00+00:00", paris) == "1 juil. 2026, 8 h 05"
    assert fr_delay("7d") == "7 jours" and fr_delay(1) == "1 jour" and fr_delay(0) == "aussitôt"
    assert territory_label({"departements": ["35"], "epci": ["243500139"]}) == "Ille-et-Vilaine, Rennes Métropole"
    assert territory_label("departements:35") == "Ille-et-Vilaine"
    assert effect_sentence(uplift(30, 100, 10, 100)).endswith(": effet probable")
    assert effect_sentence(uplift(10, 100, 30, 100)).endswith(": effet négatif probable")
