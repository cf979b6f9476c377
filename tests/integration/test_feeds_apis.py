"""The built-in BODACC and Sirene API feeds against loopback servers answering in each API's own format:
Opendatasoft records (`total_count`, `results`, offset limit) and INSEE Sirene 3.11 (`header`, cursor)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.feeds import watch_due_feeds
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.feeds import add_feed, get_feed
from store.models import Business, TriggerEvent
from tests.utils.factories import campaign_spec, siret
from tests.utils.feed_server import Answer, FeedServer
from triggers.feeds.bodacc_api import pull_bodacc
from triggers.feeds.http import FeedHttp
from triggers.feeds.sirene_api import KEY_HEADER, flat_row

TODAY = dt.datetime.now(ZoneInfo("Europe/Paris")).date()  # the feeds' day is the deployment zone's
CAP, PAGE = 50, 20  # the emulated endpoint's offset limit and page size (10,000 and 100 in production)


def bodacc_record(n: int, day: dt.date, dep: str) -> dict:
    siren = siret()[:9]
    return {
        "id": f"A{day:%Y%m%d}{dep}{n:04d}",
        "dateparution": day.isoformat(),
        "familleavis": "creation",
        "familleavis_lib": "Créations",
        "typeavis": "annonce",
        "numerodepartement": dep,
        "registre": [siren, f"{siren[:3]} {siren[3:6]} {siren[6:]}"],
        "commercant": f"ENTREPRISE {n}",
    }


WHERE = re.compile(r"dateparution >= date'([\d-]+)' AND dateparution <= date'([\d-]+)'")


def opendatasoft(records: list[dict], log: list[dict]):
    """The records endpoint: ODSQL date range and département filter, order, limit/offset within the cap."""

    def answer(seen) -> Answer:
        where, limit, offset = seen.query["where"], int(seen.query["limit"]), int(seen.query["offset"])
        log.append(dict(seen.query))
        if limit > PAGE or offset + limit > CAP:
            return Answer.json(
                {"error_code": "InvalidRESTParameterError", "message": "Invalid value for limit/offset"},
                status=400,
            )
        lo, hi = WHERE.search(where).groups()
        deps = re.findall(r'numerodepartement = "(\w+)"', where)
        hits = sorted(
            (
                r
                for r in records
                if lo <= r["dateparution"] <= hi and (not deps or r["numerodepartement"] in deps)
            ),
            key=lambda r: (r["dateparution"], r["id"]),
        )
        return Answer.json({"total_count": len(hits), "results": hits[offset : offset + limit]})

    return answer


@pytest.fixture
def app(settings):
    settings.feed_backoff_seconds = 0.05
    settings.bodacc_lookback_days = 2
    settings.sirene_api_per_minute = 600
    settings.sirene_api_key = "key-123"
    return bootstrap(settings)


@pytest.fixture(autouse=True)
def _today():
    """Today in Paris when the test starts, not when the module was imported (a run may cross midnight)."""
    global TODAY
    TODAY = dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def count(engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(TriggerEvent.__table__)
            .where(TriggerEvent.__table__.c.source == source)
        ).scalar()


def test_bodacc_api_pages_slices_by_date_filters_departements_and_resumes(app, monkeypatch):
    import triggers.feeds.bodacc_api as bodacc_api

    monkeypatch.setattr(bodacc_api, "OFFSET_CAP", CAP)
    monkeypatch.setattr(bodacc_api, "PAGE_SIZE", PAGE)
    days = [TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1), TODAY]
    records = [
        bodacc_record(n, day, "35") for day, k in zip(days, (45, 45, 40), strict=True) for n in range(k)
    ]
    records += [bodacc_record(n, day, "29") for day in days for n in range(10)]  # outside the campaigns
    apply_campaign(app.engine, load_spec(campaign_spec()), now=dt.datetime.now(dt.UTC))  # Ille-et-Vilaine (35)
    log: list[dict] = []
    with FeedServer() as server:
        server.routes["/records"] = opendatasoft(records, log)
        add_feed(app.engine, name="bodacc", format="bodacc-api", url=server.url("/records"), local=True, now=app.now())
        (outcome,) = watch_due_feeds(app)

        assert not outcome["failed"], outcome
        assert count(app.engine, "bodacc") == 130  # every record of 35, none of 29
        assert all('numerodepartement = "35"' in q["where"] for q in log)
        assert not any(s.path == "/records" and "error_code" in s.query for s in server.seen)
        # 130 records over three days exceed the 50-record window: the range was cut by date.
        ranges = {WHERE.search(q["where"]).groups() for q in log}
        assert (days[0].isoformat(), days[2].isoformat()) in ranges
        assert (days[2].isoformat(), days[2].isoformat()) in ranges
        feed = get_feed(app.engine, "bodacc")
        assert feed.cursor["last_date"] == TODAY.isoformat() and feed.events_total == 130
        assert "130 annonces" in feed.last_outcome

        # Next run resumes from the last publication day seen; what it finds again is not doubled.
        log.clear()
        from tests.integration.test_feeds import due_now

        due_now(app, "bodacc")
        (outcome,) = watch_due_feeds(app)
        assert not outcome["failed"] and outcome["events"] == 0
        assert {WHERE.search(q["where"]).groups() for q in log} == {(TODAY.isoformat(), TODAY.isoformat())}
        assert count(app.engine, "bodacc") == 130


def test_one_day_beyond_the_offset_limit_is_read_one_departement_at_a_time(monkeypatch):
    records = [bodacc_record(n, TODAY, dep) for dep in ("29", "35") for n in range(30)]
    log: list[dict] = []
    with FeedServer() as server:
        server.routes["/records"] = opendatasoft(records, log)
        out = io.StringIO()
        pull = pull_bodacc(
            FeedHttp(backoff=0, allow_local=True),
            server.url("/records"),
            out,
            since=TODAY,
            until=TODAY,
            departements=[],
            all_departements=["29", "35"],
            page_size=PAGE,
            offset_cap=CAP,
        )
    assert pull.records == 60 and not pull.truncated
    assert len({json.loads(line)["id"] for line in out.getvalue().splitlines()}) == 60


def etablissement(siret_value: str, processed: str, created: dt.date) -> dict:
    """One establishment as the Sirene 3.11 API returns it (nested address and periods)."""
    return {
        "siren": siret_value[:9],
        "nic": siret_value[9:],
        "siret": siret_value,
        "statutDiffusionEtablissement": "O",
        "dateCreationEtablissement": created.isoformat(),
        "trancheEffectifsEtablissement": None,
        "anneeEffectifsEtablissement": None,
        "activitePrincipaleRegistreMetiersEtablissement": None,
        "dateDernierTraitementEtablissement": processed,
        "etablissementSiege": True,
        "nombrePeriodesEtablissement": 1,
        "uniteLegale": {
            "etatAdministratifUniteLegale": "A",
            "denominationUniteLegale": "PLOMBERIE NOUVELLE",
            "categorieEntreprise": "PME",
            "categorieJuridiqueUniteLegale": "5499",
        },
        "adresseEtablissement": {
            "complementAdresseEtablissement": None,
            "numeroVoieEtablissement": "12",
            "indiceRepetitionEtablissement": None,
            "typeVoieEtablissement": "RUE",
            "libelleVoieEtablissement": "DE NANTES",
            "codePostalEtablissement": "35000",
            "libelleCommuneEtablissement": "RENNES",
            "codeCommuneEtablissement": "35238",
            "codeCedexEtablissement": None,
            "codePaysEtrangerEtablissement": None,
        },
        "adresse2Etablissement": {"numeroVoie2Etablissement": None, "codeCommune2Etablissement": None},
        "periodesEtablissement": [
            {
                "dateFin": None,
                "dateDebut": created.isoformat(),
                "etatAdministratifEtablissement": "A",
                "changementEtatAdministratifEtablissement": False,
                "enseigne1Etablissement": "PLOMBERIE NOUVELLE",
                "enseigne2Etablissement": None,
                "enseigne3Etablissement": None,
                "denominationUsuelleEtablissement": None,
                "activitePrincipaleEtablissement": "43.22A",
                "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
                "caractereEmployeurEtablissement": "N",
            }
        ],
    }


def sirene_api(items: list[dict], log: list[dict], page: int = 3):
    """The /siret search: key header required, one 429 first, cursor paging (end: same cursor)."""
    state = {"throttled": False}

    def answer(seen) -> Answer:
        log.append(dict(seen.query))
        if seen.headers.get(KEY_HEADER.lower()) != "key-123":
            return Answer.json({"fault": {"code": 900901, "message": "Invalid Credentials"}}, status=401)
        if not state["throttled"]:
            state["throttled"] = True
            return Answer.json(
                {"fault": {"message": "Too many requests"}}, status=429, **{"Retry-After": "1"}
            )
        since = re.search(r"\[(\S+) TO \*\]", seen.query["q"]).group(1)
        hits = [e for e in items if e["dateDernierTraitementEtablissement"] >= since]
        if not hits:
            return Answer.json({"header": {"statut": 404, "message": "Aucun élément trouvé"}}, status=404)
        cursor = seen.query["curseur"]
        start = 0 if cursor == "*" else int(cursor[1:])
        chunk = hits[start : start + min(page, int(seen.query["nombre"]))]
        following = f"c{start + len(chunk)}" if chunk else cursor
        return Answer.json(
            {
                "header": {
                    "statut": 200,
                    "message": "OK",
                    "total": len(hits),
                    "debut": start,
                    "nombre": len(chunk),
                    "curseur": cursor,
                    "curseurSuivant": following,
                },
                "etablissements": chunk,
            }
        )

    return answer


def test_sirene_api_cursor_paging_rate_limit_and_key(app):
    created = TODAY - dt.timedelta(days=10)
    items = [
        etablissement(siret(), f"{TODAY - dt.timedelta(days=1)}T0{n % 10}:00:00.000", created)
        for n in range(7)
    ]
    log: list[dict] = []
    with FeedServer() as server:
        server.routes["/siret"] = sirene_api(items, log)
        add_feed(
            app.engine,
            name="sirene",
            format="sirene-api",
            url=server.url("/siret"),
            local=True,
            cursor={"since": f"{TODAY - dt.timedelta(days=2)}T00:00:00"},
            now=app.now(),
        )
        (outcome,) = watch_due_feeds(app)
        assert not outcome["failed"], outcome
        assert outcome["events"] == 7  # seven creations
        cursors = [q["curseur"] for q in log]
        assert cursors == ["*", "*", "c3", "c6", "c7"]  # one 429 retried, then the cursor to its end
        with app.engine.connect() as conn:
            known = conn.execute(select(Business.__table__.c.siret)).scalars().all()
            forms = set(conn.execute(select(Business.__table__.c.categorie_juridique)).scalars())
        assert set(known) == {e["siret"] for e in items}
        assert forms == {"5499"}  # the unité légale's legal form, as its category
        feed = get_feed(app.engine, "sirene")
        assert feed.cursor["since"] == max(e["dateDernierTraitementEtablissement"] for e in items)

        # Next run asks only for what changed since the latest processing instant seen.
        from tests.integration.test_feeds import due_now

        log.clear()
        due_now(app, "sirene")
        (outcome,) = watch_due_feeds(app)
        assert not outcome["failed"]
        assert f"[{feed.cursor['since'][:19]} TO *]" in log[0]["q"]


def test_sirene_api_without_a_key_fails_plainly(app):
    app.settings.sirene_api_key = None
    with FeedServer() as server:
        server.routes["/siret"] = sirene_api([], [])
        add_feed(app.engine, name="sirene", format="sirene-api", url=server.url("/siret"), local=True, now=app.now())
        (outcome,) = watch_due_feeds(app)
    assert outcome["failed"]
    assert "accès refusé (401)" in get_feed(app.engine, "sirene").last_error


def test_flat_row_takes_the_current_period():
    item = etablissement("73282932000074", "2026-11-26T10:00:00.000", dt.date(2026, 11, 1))
    item["periodesEtablissement"].append(
        {"dateFin": "2026-10-31", "dateDebut": "2020-01-01", "etatAdministratifEtablissement": "F"}
    )
    row = flat_row(item)
    assert row["etatAdministratifEtablissement"] == "A" and row["etablissementSiege"] == "true"
    assert row["codeCommuneEtablissement"] == "35238" and row["trancheEffectifsEtablissement"] == ""
