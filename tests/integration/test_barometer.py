"""The territory barometer (issue 16, point 6): the dashboard page, its CSV and `declic barometre` give the same
figures on a seeded store; a collectivité sees its own territory only. On both databases."""

from __future__ import annotations

import datetime as dt
import html
import json
import random
import re

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.barometer import maturity_level
from orchestrator.core.stats import fr_cell, wilson
from store.accounts import add_user
from store.models import Business, Interaction
from tests.integration.test_web_dashboard import PASSWORD, signed_in
from tests.utils.outreach import business
from web.app import create_app

BUSINESS = Business.__table__
INTERACTIONS = Interaction.__table__
# (commune, trade family, businesses): Rennes and Bruz are in Rennes Métropole, Vitré in Vitré Communauté.
PLACES = [("35238", "batiment", 40), ("35238", "alimentation", 20), ("35360", "batiment", 25),
          ("35047", "beaute_bien_etre", 6)]
DAYS = [dt.datetime(2026, 5, 12, 10, tzinfo=dt.UTC), dt.datetime(2026, 8, 3, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)]


@pytest.fixture
def seeded(engine):
    """91 businesses of Ille-et-Vilaine with one or two self-diagnostics (or only a stored maturity), and a
    diagnosed business in Ardèche; returns each Ille-et-Vilaine business's latest level."""
    rng = random.Random(6)
    latest: dict[int, str] = {}
    with engine.begin() as conn:
        for code, family, count in PLACES:
            for _ in range(count):
                b = business(conn, code, family=family)
                if rng.random() < 0.1:  # only the maturity stored on the business
                    score = rng.randint(0, 5)
                    conn.execute(update(BUSINESS).where(BUSINESS.c.id == b).values(digital_maturity=score))
                    latest[b] = maturity_level(score)
                    continue
                for at in sorted(rng.sample(DAYS, rng.choice((1, 2)))):
                    score = rng.randint(0, 5)
                    conn.execute(INTERACTIONS.insert().values(
                        business_id=b, kind="diagnostic_completed", at=at,
                        data={"score": score, "answers": {}, "source": "landing"}))
                    latest[b] = maturity_level(score)
        other = business(conn, "07186")
        conn.execute(INTERACTIONS.insert().values(business_id=other, kind="diagnostic_completed", at=DAYS[0],
                                                  data={"score": 1, "answers": {}, "source": "landing"}))
        # A partner's diagnostic carries no score: not a level.
        conn.execute(INTERACTIONS.insert().values(business_id=b, kind="diagnostic_completed", at=DAYS[2],
                                                  data={"source": "partner:cma"}))
    for email, territory in (("agent@ille-et-vilaine.fr", {"departements": ["35"]}),
                             ("agent@ardeche.fr", {"departements": ["07"]})):
        add_user(engine, email=email, name=email, password=PASSWORD, role="collectivite", territory=territory,
                 now=dt.datetime.now(dt.UTC))
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    add_user(engine, email="claire@exemple.fr", name="Claire", password=PASSWORD, role="ambassador",
             assignee="ambassador:7", now=dt.datetime.now(dt.UTC))
    return latest


def _page_tables(text: str) -> dict[str, list[list[str]]]:
    out = {}
    for key, body in re.findall(r'<table id="t-([a-z_]+)">.*?<tbody>(.*?)</tbody>', text, re.S):
        out[key] = [[html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
                    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    return out


def test_page_csv_and_cli_give_the_same_figures(engine, settings, env_settings, seeded):
    from orchestrator.cli.main import app as cli

    runner = CliRunner()
    out = runner.invoke(cli, ["barometre", "--territory", "departement:35", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["territory_label"] == "Ille-et-Vilaine" and data["answered"] == len(seeded) == 91
    assert data["businesses"] == 91

    # The whole territory: each share is the count of latest levels, with its Wilson interval.
    overall = data["tables"]["ensemble"]["rows"][0]
    assert overall["n"] == 91
    for code in ("first_steps", "on_the_way", "well_equipped"):
        k = sum(1 for level in seeded.values() if level == code)
        assert overall[f"{code}_share"] == pytest.approx(k / 91)
        assert [overall[f"{code}_lower"], overall[f"{code}_upper"]] == pytest.approx(list(wilson(k, 91)))
    # Small groups are hidden: the 6 beauty businesses of Bruz.
    families = {r["group"]: r for r in data["tables"]["par_metier"]["rows"]}
    assert families["Bâtiment"]["n"] == 65 and families["Alimentation"]["n"] == 20
    hidden = [r for r in families.values() if r["n"] is None]
    assert len(hidden) == 1 and "effectif trop faible" in hidden[0]["note"]
    assert "first_steps_share" not in hidden[0]
    communes = [r["group"] for r in data["tables"]["par_commune"]["rows"]]
    assert communes == ["Rennes", "Vitré", "1 autre(s) commune(s)"]
    epcis = {r["group"]: r["n"] for r in data["tables"]["par_epci"]["rows"]}
    assert epcis == {"Rennes Métropole": 66, "CA Vitré Communauté": 25}
    quarters = [r["group"] for r in data["tables"]["par_trimestre"]["rows"]]
    assert quarters == ["2e trimestre 2026", "3e trimestre 2026", "4e trimestre 2026"]

    client = signed_in(create_app(bootstrap(settings)), "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/barometre")  # a collectivité's own territory by default
    assert page.status_code == 200 and "Baromètre numérique : Ille-et-Vilaine" in page.text
    assert "<script" not in page.text and "style=" not in page.text and "<svg" in page.text
    # A tile map by intercommunalité, each tile titled with its share (issue 16: a map where a map serves).
    assert 'class="chart map"' in page.text and "Part aux premiers pas" in page.text
    assert "<title>CA Vitré Communauté : " in html.unescape(page.text)
    tables = _page_tables(page.text)
    assert set(tables) == set(data["tables"])
    for key, table in data["tables"].items():
        kinds = {"group": "text", "n": "int", "note": "text"}
        expected = [[fr_cell(row.get(c), kinds.get(c, "pct")) for c in table["columns"]] for row in table["rows"]]
        assert tables[key] == expected, key
    assert "departement_code" not in page.text and "first_steps" not in page.text  # labels, no codes

    export = client.get("/tableau/barometre.csv")
    assert export.status_code == 200 and export.content.startswith("\ufeff".encode())
    text = export.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Rubrique;Groupe;Effectif;Premiers pas : part (%)")
    cli_csv = runner.invoke(cli, ["barometre", "--territory", "departement:35", "--csv"])
    assert cli_csv.exit_code == 0 and cli_csv.output == text
    share = overall["first_steps_share"] * 100
    assert f"Ensemble : Ille-et-Vilaine;Ille-et-Vilaine;91;{share:.1f}".replace(".", ",") in text

    # Inside its territory, any part of it; the CLI and the page still agree.
    part = client.get("/tableau/barometre?territoire=epci:243500139")
    assert part.status_code == 200 and "Rennes Métropole" in part.text
    out = runner.invoke(cli, ["barometre", "--territory", "epci:243500139", "--json"])
    assert json.loads(out.output)["tables"]["ensemble"]["rows"][0]["n"] == 66
    assert runner.invoke(cli, ["barometre", "--territory", "canton:12"]).exit_code == 2


def test_a_collectivite_sees_its_own_territory_only(engine, settings, seeded):
    app = create_app(bootstrap(settings))
    ardeche = signed_in(app, "agent@ardeche.fr")
    for query in ("departement:35", "commune:35238", "departements:07,departements:35"):
        url = f"/tableau/barometre?territoire={query}"
        reply = ardeche.get(url)
        assert reply.status_code == 403, url
        assert "Ille-et-Vilaine" not in reply.text and "Rennes" not in reply.text
    assert ardeche.get("/tableau/barometre.csv?territoire=departement:35").status_code == 403
    own = ardeche.get("/tableau/barometre")
    figures = own.text.rsplit("</form>", 1)[-1]  # the form's hint names example places
    assert own.status_code == 200 and "Ardèche" in figures and "Rennes" not in figures
    assert "effectif trop faible" in own.text  # one diagnosed business: below the minimum
    assert ardeche.get("/tableau/barometre?territoire=n'importe quoi").status_code == 400

    assert signed_in(app, "claire@exemple.fr").get("/tableau/barometre").status_code == 403
    operator = signed_in(app, "op@declic.fr")
    assert operator.get("/tableau/barometre").status_code == 200  # asks for a territory
    assert "Ille-et-Vilaine" in operator.get("/tableau/barometre?territoire=departement:35").text
    assert "Ardèche" in operator.get("/tableau/barometre?territoire=departement:07").text


def test_the_owners_appetite_is_shown_from_the_new_diagnostic(engine, settings, env_settings):
    from orchestrator.cli.main import app as cli

    # 12 owners of Rennes answered the new diagnostic: time they can give and chores to stop doing by hand.
    wishes = [("hours", ["booking", "payment", "management"])] * 3 + [("one_hour", ["booking"])] * 5 \
        + [("none", [])] * 4  # 3 high, 5 medium, 4 low
    with engine.begin() as conn:
        for time_given, chores in wishes:
            b = business(conn, "35238", family="batiment")
            answers = {"phone": ["email"], "invoices": "accountant", "time": time_given, "chores": chores,
                       "trade": "partly"}
            conn.execute(INTERACTIONS.insert().values(business_id=b, kind="diagnostic_completed", at=DAYS[2],
                                                      data={"version": 2, "answers": answers, "source": "landing"}))
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    out = CliRunner().invoke(cli, ["barometre", "--territory", "epci:243500139", "--json"])
    assert out.exit_code == 0, out.output
    tables = json.loads(out.output)["tables"]
    whole = tables["envie_ensemble"]["rows"][0]
    assert whole["n"] == 12
    assert [whole["low_share"], whole["medium_share"], whole["high_share"]] == pytest.approx([4 / 12, 5 / 12, 3 / 12])
    assert tables["envie_par_metier"]["rows"][0]["group"] == "Bâtiment"
    page = signed_in(create_app(bootstrap(settings)), "op@declic.fr").get(
        "/tableau/barometre?territoire=epci:243500139")
    assert "Envie d'avancer : Rennes Métropole" in html.unescape(page.text)
    assert "Envie d&#39;essayer : part" in page.text or "Envie d'essayer : part" in page.text
