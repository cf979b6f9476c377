"""Overlapping campaigns of nested territories (issue 20) through the store, on SQLite and PostgreSQL: one
voice per business and moment, covered businesses recorded with the winner, one control group shared by
every campaign (also across planning runs), a territory's global control group, and what the reports say."""

from __future__ import annotations

import datetime as dt
import json

import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all
from orchestrator.cli.main import app as cli
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.models import (
    Business,
    Campaign,
    Coverage,
    Enrollment,
    GlobalEffectRollup,
    Interaction,
    Message,
    TriggerEvent,
)
from store.planning import campaign_overlaps
from store.report import campaign_by_name, refresh_rollup, report
from tests.utils.factories import campaign_spec

B, E, M, COV = Business.__table__, Enrollment.__table__, Message.__table__, Coverage.__table__
CAMPAIGNS = Campaign.__table__
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
METROPOLE = {"name": "Rennes Métropole", "territory": {"epci": ["243500139"]}}


def add_creations(engine, start: int, n: int, source: str = "test", **kw) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for i in range(start, start + n):
            values = dict(siret=f"{i:014d}", siren=f"{i:09d}", name=f"Entreprise {i}", naf_code="43.22A",
                          metier_family="batiment", commune_code="35238", epci_code="243500139",
                          departement_code="35", region_code="53", state="active", do_not_contact=False,
                          phone_consent=False, email=f"e{i}@exemple.fr", created_at=NOW, updated_at=NOW) | kw
            found = conn.execute(select(B.c.id).where(B.c.siret == values["siret"])).scalar()
            business_id = found or conn.execute(B.insert().values(**values)).inserted_primary_key[0]
            conn.execute(TriggerEvent.__table__.insert().values(
                source=source, external_id=f"{source}-{i}", type="creation", business_id=business_id,
                siret=values["siret"], occurred_on=dt.date(2026, 11, 28), received_at=NOW, status="accepted",
                planned=False, payload={}))
            ids.append(business_id)
    return ids


def two_campaigns(engine) -> tuple[int, int]:
    departement, _, _ = apply_campaign(engine, load_spec(campaign_spec(name="departement-batiment", holdout=20)),
                                       now=NOW)
    metropole, _, _ = apply_campaign(engine, load_spec(campaign_spec(name="metropole-batiment", holdout=20,
                                                                     owner=METROPOLE)), now=NOW)
    return departement, metropole


def test_the_issue_example_one_welcome_each_and_a_clean_control_group(settings, engine):
    departement, metropole = two_campaigns(engine)
    add_creations(engine, 1, 120)
    counts = plan_all(bootstrap(settings, clock=lambda: NOW), now=NOW)
    assert counts["skipped_covered"] == 120
    with engine.connect() as conn:
        enrolled = conn.execute(select(E.c.campaign_id, E.c.business_id, E.c.arm, E.c.moment)).all()
        covered = conn.execute(select(COV.c.campaign_id, COV.c.covered_by, COV.c.reason, COV.c.kind)).all()
        messages = conn.execute(select(M.c.business_id, M.c.campaign_id)).all()
    # The most local owner speaks, once per business; the Département records each one as covered by it.
    assert {e.campaign_id for e in enrolled} == {metropole} and len(enrolled) == 120
    assert {e.moment for e in enrolled} == {"creation:2026"}
    assert len(covered) == 120
    assert set(covered) == {(departement, metropole, "déjà accompagnée par Rennes Métropole", "covered")}
    held = {e.business_id for e in enrolled if e.arm == "holdout"}
    assert 10 < len(held) < 40
    assert len(messages) == 120 - len(held)
    assert not held & {m.business_id for m in messages}


def test_a_moment_owned_in_an_earlier_run_stays_owned(settings, engine):
    """The same creation told again by another source a day later: the campaign that owns the moment keeps
    it (already enrolled), the other one is covered: no second welcome, no contact of a control business."""
    departement, metropole = two_campaigns(engine)
    app = bootstrap(settings, clock=lambda: NOW)
    # First run: only the Département campaign is active; it enrols the 40 businesses.
    with engine.begin() as conn:
        conn.execute(CAMPAIGNS.update().where(CAMPAIGNS.c.id == metropole).values(status="paused"))
    add_creations(engine, 1, 40)
    plan_all(app, now=NOW)
    with engine.begin() as conn:
        conn.execute(CAMPAIGNS.update().where(CAMPAIGNS.c.id == metropole).values(status="active"))
    # The same creations again from Sirene: the Métropole campaign is more local, but the moment is taken.
    add_creations(engine, 1, 40, source="sirene")
    counts = plan_all(app, now=NOW + dt.timedelta(days=1))
    assert counts["skipped_covered"] == 40 and counts["skipped_already_enrolled"] == 40
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(E).where(E.c.campaign_id == metropole)).scalar() == 0
        held = set(conn.execute(select(E.c.business_id).where(E.c.arm == "holdout")).scalars())
        contacted = set(conn.execute(select(M.c.business_id)).scalars())
        reasons = set(conn.execute(select(COV.c.reason).where(COV.c.campaign_id == metropole)).scalars())
    assert held and not held & contacted
    assert reasons == {"déjà accompagnée par Département d'Ille-et-Vilaine"}


def test_reports_say_who_covered_and_that_the_control_group_is_clean(settings, engine):
    departement, metropole = two_campaigns(engine)
    add_creations(engine, 1, 120)
    plan_all(bootstrap(settings, clock=lambda: NOW), now=NOW)
    with engine.connect() as conn:
        rows = {name: campaign_by_name(conn, name) for name in ("departement-batiment", "metropole-batiment")}
        held = conn.execute(select(func.count()).select_from(E).where(E.c.arm == "holdout")).scalar()
    dep = report(engine, rows["departement-batiment"])
    assert dep.table("covered").rows == [{"campaign": "metropole-batiment", "by": "Rennes Métropole",
                                          "businesses": 120}]
    assert dep.funnel["treatment"].targeted == dep.funnel["holdout"].targeted == 0  # outside its funnel
    met = report(engine, rows["metropole-batiment"])
    assert met.table("control_check").rows == [{"control_n": held, "contacted": 0}]
    assert met.table("covered").rows == []
    assert met.funnel["holdout"].targeted == held and met.funnel["treatment"].targeted == 120 - held


def test_a_territory_global_control_group_is_never_contacted_and_measured(env_settings, engine):
    runner = CliRunner()
    refused = runner.invoke(cli, ["territories", "holdout", "departement:35", "30%"])
    assert refused.exit_code == 2 and "entre 0 et 10 %" in refused.output
    done = runner.invoke(cli, ["territories", "holdout", "departement:35", "10%"])
    assert done.exit_code == 0, done.output
    assert "10 % des entreprises" in done.output
    departement, metropole = two_campaigns(engine)
    add_creations(engine, 1, 300)
    plan_all(bootstrap(env_settings, clock=lambda: NOW), now=NOW)
    with engine.connect() as conn:
        kept = set(conn.execute(select(COV.c.business_id).where(COV.c.kind == "global",
                                                                 COV.c.campaign_id == metropole)).scalars())
        enrolled = set(conn.execute(select(E.c.business_id)).scalars())
        contacted = set(conn.execute(select(M.c.business_id)).scalars())
        # Both campaigns record the global control group; a few of them convert anyway.
        assert set(conn.execute(select(COV.c.business_id).where(COV.c.kind == "global",
                                                                 COV.c.campaign_id == departement)).scalars()) == kept
        for business_id in sorted(kept)[:3]:
            conn.execute(Interaction.__table__.insert().values(
                business_id=business_id, kind="offer_enrolled", at=NOW + dt.timedelta(days=3), data={}))
        conn.commit()
        row = campaign_by_name(conn, "metropole-batiment")
    assert 10 < len(kept) < 60
    assert not kept & enrolled and not kept & contacted
    effect = report(engine, row).table("global_effect").rows
    assert len(effect) == 1 and effect[0]["territory"] == "departement 35"
    assert effect[0]["global_n"] == len(kept) and effect[0]["programme_n"] == 300 - len(kept)
    assert effect[0]["global_rate"] == 3 / len(kept)


def test_dashboard_overlap_view_co_owners_and_apply(settings, env_settings, engine, tmp_path):
    from fastapi.testclient import TestClient

    from store.accounts import add_user
    from tests.integration.test_web_dashboard import PASSWORD, csrf_of
    from web.app import create_app

    departement, metropole = two_campaigns(engine)
    add_creations(engine, 1, 30)
    plan_all(bootstrap(settings, clock=lambda: NOW), now=NOW)
    # A campaign co-signed by Saint-Malo Agglomération and the Département: each sees it on its dashboard.
    cosigned = campaign_spec(name="ensemble-malo", owner={"name": "Saint-Malo Agglomération",
                                                          "territory": {"epci": ["243500782"]}},
                             co_owners=[METROPOLE], triggers=["first_hire"])
    path = tmp_path / "ensemble.yaml"
    path.write_text(yaml.safe_dump(cosigned, allow_unicode=True), encoding="utf-8")
    applied = CliRunner().invoke(cli, ["campaigns", "apply", str(path)])
    assert applied.exit_code == 0, applied.output
    assert "Chevauchement" not in applied.output  # another trigger: no overlap
    path.write_text(yaml.safe_dump(campaign_spec(name="departement-bis"), allow_unicode=True), encoding="utf-8")
    overlapping = CliRunner().invoke(cli, ["campaigns", "apply", str(path)], env={"COLUMNS": "300"})
    assert "Chevauchement avec departement-batiment (Département d'Ille-et-Vilaine) : 30 entreprises" in \
        " ".join(overlapping.output.split())
    assert "Chevauchement avec metropole-batiment (Rennes Métropole)" in " ".join(overlapping.output.split())

    add_user(engine, email="agent@rennes-metropole.fr", name="Rennes Métropole", password=PASSWORD,
             role="collectivite", territory={"epci": ["243500139"]}, now=NOW)
    client = TestClient(create_app(bootstrap(settings)))
    page = client.get("/connexion")
    client.post("/connexion", data={"email": "agent@rennes-metropole.fr", "password": PASSWORD,
                                    "csrf": csrf_of(page.text)}, follow_redirects=False)
    home = client.get("/tableau").text
    assert "ensemble-malo" in home and "metropole-batiment" in home and "departement-batiment" not in home
    with engine.connect() as conn:
        malo = campaign_by_name(conn, "ensemble-malo").id
    assert client.get(f"/tableau/campagnes/{malo}").status_code == 200
    view = client.get(f"/tableau/campagnes/{metropole}").text
    assert 'id="overlaps"' in view and "departement-bis" in view
    assert "Contactées pour ce moment" in view
    # The Département's operator sees what it left to the Métropole.
    add_user(engine, email="op@declic.fr", name="Opératrice", password=PASSWORD, role="operator", now=NOW)
    op = TestClient(create_app(bootstrap(settings)))
    page = op.get("/connexion")
    op.post("/connexion", data={"email": "op@declic.fr", "password": PASSWORD, "csrf": csrf_of(page.text)},
            follow_redirects=False)
    dep = op.get(f"/tableau/campagnes/{departement}").text
    assert "Rennes Métropole" in dep and "déjà accompagnées" in dep.lower()


def test_the_territory_barometer_shows_the_programme_s_global_effect(settings, env_settings, engine):
    from store.accounts import add_user
    from tests.integration.test_web_dashboard import PASSWORD, signed_in
    from web.app import create_app

    runner = CliRunner()
    assert runner.invoke(cli, ["territories", "holdout", "departement:35", "10%"]).exit_code == 0
    two_campaigns(engine)
    add_creations(engine, 1, 200)
    plan_all(bootstrap(env_settings, clock=lambda: NOW), now=NOW)
    with engine.begin() as conn:
        kept = sorted(conn.execute(select(COV.c.business_id).where(COV.c.kind == "global")).scalars().unique())
        conn.execute(Interaction.__table__.insert().values(
            business_id=kept[0], kind="offer_enrolled", at=NOW + dt.timedelta(days=3), data={}))
    # The Métropole, inside the Département's global control group, sees the programme's effect there.
    out = runner.invoke(cli, ["barometre", "--territory", "epci:243500139", "--json"])
    assert out.exit_code == 0, out.output
    [effect] = json.loads(out.output)["global_effect"]
    assert effect["global_n"] == len(kept) and effect["programme_n"] == 200 - len(kept)
    assert effect["global_rate"] == 1 / len(kept)
    add_user(engine, email="agent@rennes-metropole.fr", name="Rennes Métropole", password=PASSWORD,
             role="collectivite", territory={"epci": ["243500139"]}, now=NOW)
    page = signed_in(create_app(bootstrap(settings)), "agent@rennes-metropole.fr").get("/tableau/barometre").text
    assert "Effet global du programme" in page and 'id="t-global_effect"' in page


def _contact_a_control(engine, campaign_id: int, business_id: int) -> None:
    """Another campaign writes to a held-back business for the same moment (what the check must catch)."""
    with engine.begin() as conn:
        enrollment = conn.execute(E.insert().values(
            campaign_id=campaign_id, business_id=business_id, trigger_key="creation", trigger_type="creation",
            arm="treatment", enrolled_at=NOW, moment="creation:2026")).inserted_primary_key[0]
        conn.execute(M.insert().values(campaign_id=campaign_id, enrollment_id=enrollment, business_id=business_id,
                                       step=0, channel="email", template="creation", due_at=NOW, status="sent",
                                       context={}, created_at=NOW))


def test_the_control_check_is_read_from_the_rollup_as_of_its_refresh(settings, engine):
    """The clean-control count costs a look-up per held-back enrollment: a rolled-up report reads the count the
    rollup kept (as of its refresh, like the funnel beside it); a live report counts now."""
    departement, metropole = two_campaigns(engine)
    add_creations(engine, 1, 120)
    plan_all(bootstrap(settings, clock=lambda: NOW), now=NOW)
    with engine.connect() as conn:
        held = conn.execute(select(E.c.business_id).where(E.c.campaign_id == metropole, E.c.arm == "holdout")
                            .order_by(E.c.business_id)).scalars().all()
        row = campaign_by_name(conn, "metropole-batiment")
    _contact_a_control(engine, departement, held[0])
    refresh_rollup(engine, [metropole], now=NOW)
    _contact_a_control(engine, departement, held[1])  # after the refresh: not in the rolled-up report yet

    def contacted(**kw) -> int:
        return report(engine, row, **kw).table("control_check").rows[0]["contacted"]

    assert (contacted(), contacted(live=True)) == (1, 2)
    refresh_rollup(engine, [metropole], now=NOW + dt.timedelta(days=1))
    assert contacted() == 2


def test_global_effects_are_read_from_the_rollup_as_of_its_refresh(settings, env_settings, engine):
    """Counted live, a territory of millions of enrollments took seconds in every report and barometer: a
    rolled-up report reads the territory's effect the refresh kept (like the funnel beside it), once for each
    campaign touching it, and the barometer the territory's own row; both count it now before any refresh."""
    from store.barometer import barometer

    runner = CliRunner()
    assert runner.invoke(cli, ["territories", "holdout", "departement:35", "10%"]).exit_code == 0
    departement, metropole = two_campaigns(engine)
    elsewhere, _, _ = apply_campaign(engine, load_spec(campaign_spec(
        name="finistere-batiment", owner={"name": "Département du Finistère", "territory": {"departements": ["29"]}})),
        now=NOW)
    add_creations(engine, 1, 200)
    plan_all(bootstrap(env_settings, clock=lambda: NOW), now=NOW)
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(COV.c.business_id).where(COV.c.kind == "global")).scalars().unique())
        rows = {name: campaign_by_name(conn, name) for name in ("metropole-batiment", "finistere-batiment")}

    def convert(business_id: int) -> None:
        with engine.begin() as conn:
            conn.execute(Interaction.__table__.insert().values(
                business_id=business_id, kind="offer_enrolled", at=NOW + dt.timedelta(days=3), data={}))

    def effect(name: str, **kw) -> list[tuple[int, float]]:
        return [(r["global_n"], r["global_rate"]) for r in report(engine, rows[name], **kw).table("global_effect").rows]

    def around() -> float:
        [row] = barometer(engine, {"epci": ["243500139"]}, "Rennes Métropole").global_effect.rows
        return row["global_rate"] * len(kept)

    convert(kept[0])
    one, two = [(len(kept), 1 / len(kept))], [(len(kept), 2 / len(kept))]
    assert effect("metropole-batiment") == one and round(around()) == 1  # no rollup yet: counted now
    refresh_rollup(engine, None, now=NOW)
    convert(kept[1])  # after the refresh: not in the rolled-up figures yet
    assert effect("metropole-batiment") == one and round(around()) == 1
    assert effect("metropole-batiment", live=True) == two
    assert effect("finistere-batiment") == []  # touches no business of the territory
    refresh_rollup(engine, [metropole], now=NOW + dt.timedelta(days=1))
    assert effect("metropole-batiment") == two and round(around()) == 2
    with engine.connect() as conn:
        stored = conn.execute(select(GlobalEffectRollup.__table__.c.campaign_id)).scalars().all()
    assert sorted(stored, key=str) == sorted([None, departement, metropole], key=str)
    assert elsewhere not in stored


def test_the_campaign_page_reads_overlap_counts_from_the_rollup_while_neither_campaign_changes(settings, engine):
    """Counting the businesses two overlapping segments share scans both (250 ms each for two département-wide
    segments at 2.8 M businesses): the campaign page reads the rollup's count while both specs are the versions
    it counted, and counts again when either changed."""
    from web.dashboard import _overlaps

    _, metropole = two_campaigns(engine)
    add_creations(engine, 1, 40)
    declic = bootstrap(settings, clock=lambda: NOW)

    def shared() -> list[int]:
        with engine.connect() as conn:
            row = campaign_by_name(conn, "metropole-batiment")
        return [o["businesses"] for o in _overlaps(declic, row)]

    assert shared() == [40]
    refresh_rollup(engine, None, now=NOW)
    add_creations(engine, 41, 10)  # after the refresh
    assert shared() == [40]  # as of the refresh
    with engine.connect() as conn:
        assert campaign_overlaps(conn, load_spec(campaign_spec(name="metropole-batiment", holdout=20,
                                                               owner=METROPOLE)), metropole, NOW.date())[0][
            "businesses"] == 50  # counted now when no rollup is given
    apply_campaign(engine, load_spec(campaign_spec(name="departement-batiment", holdout=15)), now=NOW)
    assert shared() == [50]  # the other campaign changed: counted now
    refresh_rollup(engine, None, now=NOW + dt.timedelta(days=1))
    add_creations(engine, 51, 5)
    assert shared() == [50]
