"""The dashboard: sign-in, campaigns, figures equal to `declic report`, exports, call tasks, campaign
creation, and the tenant-isolation matrix over every route, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.app.bootstrap import bootstrap
from store.accounts import add_user
from store.conversions import request_callback
from store.models import CallTask, Campaign, Interaction, Message
from tests.utils.outreach import seed_funnel
from web.app import create_app

PASSWORD = "un-mot-de-passe-solide"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def world(engine):
    """Two collectivités (Ille-et-Vilaine, Ardèche), an operator, two ambassadors, a call task each."""
    rennes = seed_funnel(engine)
    privas = seed_funnel(
        engine,
        name="ardeche-07",
        departement="07",
        commune_code="07186",
        treatment=4,
        holdout=2,
        clicks=1,
        responses=1,
        conversions_t=1,
        conversions_h=0,
    )
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator",
             now=dt.datetime.now(dt.UTC))
    add_user(
        engine,
        email="agent@ille-et-vilaine.fr",
        name="Département d'Ille-et-Vilaine",
        password=PASSWORD,
        role="collectivite",
        territory={"departements": ["35"]},
        now=dt.datetime.now(dt.UTC),
    )
    add_user(
        engine,
        email="agent@ardeche.fr",
        name="Département de l'Ardèche",
        password=PASSWORD,
        role="collectivite",
        territory={"departements": ["07"]},
        now=dt.datetime.now(dt.UTC),
    )
    add_user(
        engine,
        email="claire@exemple.fr",
        name="Claire",
        password=PASSWORD,
        role="ambassador",
        assignee="ambassador:7",
        now=dt.datetime.now(dt.UTC),
    )
    add_user(
        engine,
        email="paul@exemple.fr",
        name="Paul",
        password=PASSWORD,
        role="ambassador",
        assignee="ambassador:8",
        now=dt.datetime.now(dt.UTC),
    )

    tasks = {}
    with engine.begin() as conn:
        for tenant, assignee in ((rennes, "ambassador:7"), (privas, "ambassador:8")):
            msg = conn.execute(
                select(Message.__table__).where(Message.__table__.c.id == tenant.message_ids[-1])
            ).one()
            stored = request_callback(
                conn,
                msg,
                phone="+33612345678",
                slot="matin",
                due_at=dt.datetime(2026, 10, 6, 7, tzinfo=dt.UTC),
                note="",
                assignee=assignee,
                script="Rappeler.",
                now=dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC),
            )
            tasks[assignee] = stored.task_id
    return {"rennes": rennes, "privas": privas, "tasks": tasks}


@pytest.fixture
def app(settings, engine):
    return create_app(bootstrap(settings))


def signed_in(app, email: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/connexion")
    reply = client.post(
        "/connexion",
        data={"email": email, "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    return client


def test_sign_in_refuses_a_wrong_password_and_needs_csrf(app, world):
    client = TestClient(app)
    assert client.get("/tableau", follow_redirects=False).headers["location"].startswith("/connexion")
    page = client.get("/connexion")
    wrong = client.post(
        "/connexion", data={"email": "op@declic.fr", "password": "nope", "csrf": csrf_of(page.text)}
    )
    assert wrong.status_code == 401 and "incorrect" in wrong.text
    assert client.post("/connexion", data={"email": "op@declic.fr", "password": PASSWORD}).status_code == 403
    client = signed_in(app, "op@declic.fr")
    assert any(c.name == "declic_session" for c in client.cookies.jar)
    home = client.get("/tableau")
    assert home.status_code == 200 and "bienvenue-35" in home.text and "ardeche-07" in home.text
    out = client.post("/deconnexion", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/tableau", follow_redirects=False).status_code == 303


def test_open_redirect_after_sign_in_is_refused(app, world):
    client = TestClient(app)
    page = client.get("/connexion?suite=//evil.example")
    reply = client.post(
        "/connexion",
        data={
            "email": "op@declic.fr",
            "password": PASSWORD,
            "csrf": csrf_of(page.text),
            "suite": "https://evil.example",
        },
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/tableau"


def test_every_dashboard_table_equals_declic_report(app, world):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    cid = world["rennes"].campaign_id
    page = client.get(f"/tableau/campagnes/{cid}")
    assert page.status_code == 200
    assert "<svg" in page.text and "Entonnoir" in page.text
    # The exports (French CSV, the same numbers as `declic report`): tests/integration/test_dashboard_exports.py.
    # The French figures on the page: 10 targeted, 20,0 % conversion, the funnel table row by row.
    funnel = re.search(r'<table id="t-funnel">.*?</table>', page.text, re.S).group(0)
    assert "20,0\u00a0%" in funnel and ">10<" in funnel and ">5<" in funnel


def test_business_timeline_and_its_export(app, world):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    bid = world["rennes"].business_ids[0]
    page = client.get(f"/tableau/entreprises/{bid}")
    assert page.status_code == 200 and "a cliqué" in page.text and "demande un rappel" in page.text
    assert "inscrit à une offre" in page.text
    export = client.get(f"/tableau/entreprises/{bid}/historique.csv")
    assert export.status_code == 200 and "a cliqué" in export.content.decode("utf-8-sig")
    listing = client.get(f"/tableau/campagnes/{world['rennes'].campaign_id}/entreprises")
    assert f"/tableau/entreprises/{bid}" in listing.text
    export = client.get(f"/tableau/campagnes/{world['rennes'].campaign_id}/entreprises.csv").content.decode(
        "utf-8-sig"
    )
    assert len(export.strip().splitlines()) == 1 + 15


def test_ambassador_sees_only_its_tasks_and_a_meeting_counts_as_a_conversion(app, engine, world):
    client = signed_in(app, "claire@exemple.fr")
    page = client.get("/tableau/appels")
    assert page.status_code == 200
    assert f'id="appel-{world["tasks"]["ambassador:7"]}"' in page.text
    assert f'id="appel-{world["tasks"]["ambassador:8"]}"' not in page.text
    assert client.get("/tableau", follow_redirects=False).headers["location"] == "/tableau/appels"
    assert client.get(f"/tableau/campagnes/{world['rennes'].campaign_id}").status_code == 403
    csrf = csrf_of(page.text)
    other = client.post(
        f"/tableau/appels/{world['tasks']['ambassador:8']}",
        data={"csrf": csrf, "outcome": "done", "met": "oui"},
    )
    assert other.status_code == 404
    mine = client.post(
        f"/tableau/appels/{world['tasks']['ambassador:7']}",
        data={"csrf": csrf, "outcome": "done", "met": "oui", "note": "RDV jeudi"},
    )
    assert mine.status_code == 200
    with engine.connect() as conn:
        task = conn.execute(
            select(CallTask.__table__).where(CallTask.__table__.c.id == world["tasks"]["ambassador:7"])
        ).one()
        met = conn.execute(
            select(Interaction.__table__).where(Interaction.__table__.c.kind == "ambassador_met")
        ).all()
    assert task.status == "done" and task.outcome_note == "RDV jeudi"
    assert len(met) == 1 and met[0].campaign_id == world["rennes"].campaign_id
    export = client.get("/tableau/appels.csv").content.decode("utf-8-sig")
    assert len(export.strip().splitlines()) == 2


def test_campaign_creation_previews_then_saves_the_same_spec_as_the_yaml(app, engine, world):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    page = client.get("/tableau/campagnes/nouvelle")
    form = {
        "csrf": csrf_of(page.text),
        "name": "relance-35",
        "title": "Relance",
        "owner_name": "Département 35",
        "sender_name": "Département",
        "sender_address": "1 avenue de la Préfecture, 35042 Rennes",
        "contact_name": "Claire",
        "triggers": ["creation"],
        "families": ["batiment"],
        "step0_channel": "email",
        "step0_delay": "0d",
        "step0_template": "creation",
        "holdout": "10",
    }
    preview = client.post("/tableau/campagnes/nouvelle", data={**form, "action": "apercu"})
    assert preview.status_code == 200 and "Aperçu" in preview.text
    assert "entreprise(s) du segment" in preview.text and "Exemple de message" in preview.text
    bad = client.post(
        "/tableau/campagnes/nouvelle", data={**form, "name": "Pas Valide", "action": "enregistrer"}
    )
    assert bad.status_code == 400 and "name" in bad.text
    outside = client.post(
        "/tableau/campagnes/nouvelle", data={**form, "segment_communes": "07186", "action": "enregistrer"}
    )
    assert outside.status_code == 400 and "sort du territoire" in outside.text
    taken = client.post(
        "/tableau/campagnes/nouvelle", data={**form, "name": "ardeche-07", "action": "enregistrer"}
    )
    assert taken.status_code == 400 and "déjà pris" in taken.text
    saved = client.post(
        "/tableau/campagnes/nouvelle", data={**form, "action": "enregistrer"}, follow_redirects=False
    )
    assert saved.status_code == 303
    with engine.connect() as conn:
        row = conn.execute(select(Campaign.__table__).where(Campaign.__table__.c.name == "relance-35")).one()
    assert row.spec["owner"]["territory"]["departements"] == ["35"] and row.spec["holdout"] == 10
    assert client.get(saved.headers["location"]).status_code == 200


# --- the tenant-isolation matrix: every dashboard route, with the other tenant's ids ---


def _all_routes(routes, prefix=""):
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.150 keeps included routers nested
        if included is not None:
            yield from _all_routes(included.routes, prefix + route.include_context.prefix)
        elif getattr(route, "methods", None):
            yield prefix + route.path, route.methods


def _routes(app):
    for path, methods in _all_routes(app.routes):
        if path.startswith("/tableau"):
            for method in sorted(methods - {"HEAD"}):
                yield method, path


def _fill(path: str, ids: dict) -> str | None:
    out = path
    for name, value in ids.items():
        out = out.replace("{" + name + "}", str(value))
    return None if "{" in out else out


def test_tenant_isolation_matrix(app, world):
    """The Ille-et-Vilaine agent, given every Ardèche id on every route: 403 or 404, never the data."""
    privas = world["privas"]
    foreign = {
        "campaign_id": privas.campaign_id,
        "business_id": privas.business_ids[0],
        "task_id": world["tasks"]["ambassador:8"],
        "table_key": "funnel",
        "kind": "ambassadeurs",
    }
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    csrf = csrf_of(client.get("/tableau").text)
    checked = 0
    for method, path in _routes(app):
        if not any("{" + k + "}" in path for k in foreign):
            continue
        url = _fill(path, foreign)
        assert url is not None, f"route {path} has an id the matrix does not know"
        if method == "GET":
            reply = client.get(url)
        else:
            reply = client.post(url, data={"csrf": csrf, "status": "ended", "outcome": "done"})
        assert reply.status_code in (403, 404), (method, path, reply.status_code)
        assert "ardeche-07" not in reply.text and "07186" not in reply.text
        checked += 1
    assert checked >= 9
    # Lists never show the other tenant either.
    assert "ardeche-07" not in client.get("/tableau").text
    assert "ardeche-07" not in client.get("/tableau/campagnes.csv").text
    assert f"appel-{world['tasks']['ambassador:8']}" not in client.get("/tableau/appels?tout=true").text
    # The forged POSTs changed nothing: the Ardèche campaign is still active, its call task still open.
    with app.state.app.engine.connect() as conn:
        status = conn.execute(
            select(Campaign.__table__.c.status).where(Campaign.__table__.c.id == privas.campaign_id)
        ).scalar_one()
        task = conn.execute(
            select(CallTask.__table__.c.status).where(
                CallTask.__table__.c.id == world["tasks"]["ambassador:8"]
            )
        ).scalar_one()
    assert status == "active" and task == "open"


def test_operator_sees_both_tenants(app, world):
    client = signed_in(app, "op@declic.fr")
    for tenant in ("rennes", "privas"):
        assert client.get(f"/tableau/campagnes/{world[tenant].campaign_id}").status_code == 200
        assert client.get(f"/tableau/entreprises/{world[tenant].business_ids[0]}").status_code == 200


def test_forms_without_csrf_are_refused(app, world):
    client = signed_in(app, "op@declic.fr")
    cid = world["rennes"].campaign_id
    assert client.post(f"/tableau/campagnes/{cid}/statut", data={"status": "paused"}).status_code == 403
    assert client.post(f"/tableau/campagnes/{cid}/recalcul", data={"csrf": "forged"}).status_code == 403
    assert client.post("/deconnexion").status_code == 403


AMBASSADORS_CSV = """key,name,metier,families,communes,epci,departements,channels,phone,email,commune,monthly_capacity
amb-1,Claire Le Goff,plombière,batiment,35238,,,email|phone,02 99 02 35 36,claire@exemple.fr,Rennes,8
amb-2,Sans Contact,,batiment,35238,,,,,,,
"""


def test_operator_manages_ambassadors_with_the_import_rules(app, engine, world):
    client = signed_in(app, "op@declic.fr")
    page = client.get("/tableau/registre/ambassadeurs")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    imported = client.post(
        "/tableau/registre/ambassadeurs",
        data={"csrf": csrf},
        files={"fichier": ("amb.csv", AMBASSADORS_CSV.encode(), "text/csv")},
    )
    assert imported.status_code == 200
    assert (
        "1 ligne(s) enregistrée(s), 1 refusée(s)" in imported.text and "ligne 3, champ « Téléphone »" in imported.text
    )
    edited = client.post(
        "/tableau/registre/ambassadeurs",
        data={
            "csrf": csrf,
            "key": "amb-1",
            "name": "Claire Le Goff",
            "metier": "plombière",
            "families": "batiment|alimentation",
            "communes": "35238",
            "channels": "email",
            "phone": "02 99 02 35 36",
            "monthly_capacity": "12",
        },
    )
    assert edited.status_code == 200 and "1 ligne(s) enregistrée(s), 0 refusée(s)" in edited.text
    bad = client.post(
        "/tableau/registre/ambassadeurs",
        data={
            "csrf": csrf,
            "key": "amb-3",
            "name": "X",
            "families": "inconnue",
            "communes": "35238",
            "phone": "0600000000",
        },
    )
    assert bad.status_code == 400 and "familles inconnues" in bad.text
    export = client.get("/tableau/registre/ambassadeurs/export.csv").content.decode("utf-8-sig")
    assert "amb-1,Claire Le Goff,plombière,batiment|alimentation,,35238" in export
    assert client.get("/tableau/registre/offres").status_code == 200
    agent = signed_in(app, "agent@ille-et-vilaine.fr")
    assert agent.get("/tableau/registre/ambassadeurs").status_code == 403


def test_editing_a_campaign_keeps_what_the_form_does_not_show(app, engine, world):
    from orchestrator.core.campaign_spec import load_spec
    from store.admin import apply_campaign

    cid = world["rennes"].campaign_id
    with engine.connect() as conn:
        spec = dict(
            conn.execute(select(Campaign.__table__.c.spec).where(Campaign.__table__.c.id == cid)).scalar_one()
        )
    spec["variants"] = [{"name": "court", "weight": 1}, {"name": "temoignage", "weight": 1}]
    apply_campaign(engine, load_spec(spec), now=dt.datetime.now(dt.UTC))
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    assert client.get(f"/tableau/campagnes/nouvelle?depuis={world['privas'].campaign_id}").status_code == 404
    page = client.get(f"/tableau/campagnes/nouvelle?depuis={cid}")
    assert page.status_code == 200 and "Modifier la campagne bienvenue-35" in page.text
    form = {
        "csrf": csrf_of(page.text),
        "depuis": str(cid),
        "name": "autre-nom",
        "title": "Nouveau titre",
        "owner_name": "Département 35",
        "sender_name": "Département",
        "sender_address": "1 avenue de la Préfecture, 35042 Rennes",
        "contact_name": "Claire",
        "triggers": ["creation", "first_hire"],
        "families": ["batiment"],
        "step0_channel": "email",
        "step0_delay": "0d",
        "step0_template": "creation",
        "holdout": "20",
        "action": "enregistrer",
    }
    saved = client.post("/tableau/campagnes/nouvelle", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/tableau/campagnes/{cid}"
    with engine.connect() as conn:
        row = conn.execute(select(Campaign.__table__).where(Campaign.__table__.c.id == cid)).one()
    assert row.name == "bienvenue-35" and row.version == 3 and row.spec["title"] == "Nouveau titre"
    assert row.spec["variants"] == spec["variants"] and row.spec["holdout"] == 20
    assert row.spec["triggers"] == ["creation", "first_hire"]
    forged = client.post(
        "/tableau/campagnes/nouvelle", data={**form, "depuis": str(world["privas"].campaign_id)}
    )
    assert forged.status_code == 404


def test_csv_exports_neutralise_spreadsheet_formulas(app, engine, world):
    from store.models import Business

    bid = world["rennes"].business_ids[0]
    with engine.begin() as conn:
        conn.execute(
            Business.__table__.update()
            .where(Business.__table__.c.id == bid)
            .values(name='=HYPERLINK("http://evil.example","x")')
        )
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    export = client.get(f"/tableau/campagnes/{world['rennes'].campaign_id}/entreprises.csv").content.decode(
        "utf-8-sig"
    )
    assert "'=HYPERLINK" in export and "\n=HYPERLINK" not in export and ',"=HYPERLINK' not in export


def _try(app, email: str, password: str) -> int:
    client = TestClient(app)
    csrf = csrf_of(client.get("/connexion").text)
    reply = client.post("/connexion", data={"email": email, "password": password, "csrf": csrf},
                        follow_redirects=False)
    return reply.status_code


def test_sign_in_slows_down_after_five_wrong_passwords_in_any_web_process(settings, engine, world):
    # Two apps on the same store stand for two web processes: the failures of one count in the other.
    first, second = create_app(bootstrap(settings)), create_app(bootstrap(settings))
    for app in (first, second, first, second, first):
        assert _try(app, "paul@exemple.fr", "x") == 401
    client = TestClient(second)
    csrf = csrf_of(client.get("/connexion").text)
    blocked = client.post("/connexion", data={"email": "paul@exemple.fr", "password": PASSWORD, "csrf": csrf})
    assert blocked.status_code == 429 and "Trop d&#39;essais" in blocked.text
    # Another e-mail is not held back.
    assert _try(first, "op@declic.fr", PASSWORD) == 303


def test_a_successful_sign_in_forgets_the_earlier_wrong_passwords(app, world):
    for _ in range(4):
        assert _try(app, "paul@exemple.fr", "x") == 401
    assert _try(app, "paul@exemple.fr", PASSWORD) == 303
    for _ in range(4):
        assert _try(app, "paul@exemple.fr", "x") == 401
    assert _try(app, "paul@exemple.fr", PASSWORD) == 303  # 8 failures in all, never 5 in a row


def test_business_search_stays_inside_the_territory(app, engine, world):
    client = signed_in(app, "agent@ille-et-vilaine.fr")
    found = client.get("/tableau/entreprises?q=entreprise t")
    assert found.status_code == 200
    links = set(re.findall(r'href="/tableau/entreprises/(\d+)"', found.text))
    assert links and links <= {str(b) for b in world["rennes"].business_ids}
    assert not links & {str(b) for b in world["privas"].business_ids}
    operator = signed_in(app, "op@declic.fr")
    both = set(
        re.findall(
            r'href="/tableau/entreprises/(\d+)"', operator.get("/tableau/entreprises?q=entreprise").text
        )
    )
    assert both & {str(b) for b in world["privas"].business_ids}
    assert signed_in(app, "claire@exemple.fr").get("/tableau/entreprises?q=entreprise").status_code == 403
