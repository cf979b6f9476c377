"""`declic demo`: the main job end to end on the embedded default, with nothing else started.

Fresh SQLite file, reference data, a synthetic population (Faker fr_FR) in one département, one partner,
creation events pushed through the real HTTP API on loopback, a sample campaign, the Prefect flows, the
e-mails delivered to a real SMTP server on loopback (a few written to a folder to read).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from importlib import resources

import requests
from rich.console import Console
from rich.table import Table

from integrations.smtp_sink import SmtpSink, free_port
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.settings import get_settings, prepare_prefect_env
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.labels import count_fr, family, label
from orchestrator.core.synthetic import Population
from store.admin import add_partner, apply_campaign
from store.businesses import upsert_businesses
from store.journeys import import_ambassadors, import_offers
from store.migrate import upgrade
from store.ops_metrics import last_due_at, sent_by_family
from store.reference import load_reference

DEMO_SEED = 35
README_SIRET = "73282932000074"  # the business of the README's "Using it" examples: created, enrolled, e-mailed


def _start_api(port: int, app):
    import uvicorn  # lazy, with the web app below: 1.2 s of start-up for every other command

    from web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            return server, thread
        time.sleep(0.05)
    raise RuntimeError("le serveur web de la démonstration n'a pas démarré")


def run_demo(businesses: int = 2000, events: int = 250, departement: str = "35",
             console: Console | None = None) -> dict:
    """Run the whole demo and return its summary."""
    console = console or Console()
    started = time.perf_counter()
    base = get_settings().home / "demo"
    if base.exists():
        shutil.rmtree(base)  # a fresh database each run: the demo can be run again
    base.mkdir(parents=True)
    mails = base / "mails"
    api_port = free_port()
    sink = SmtpSink(keep=False, folder=mails, write_first=events).start()  # every e-mail, to read as owners would
    os.environ.update({
        "DECLIC_HOME": str(base), "DECLIC_DATABASE_URL": f"sqlite:///{(base / 'declic.db').resolve()}",
        "DECLIC_SMTP_HOST": "127.0.0.1", "DECLIC_SMTP_PORT": str(sink.port),
        "DECLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
    })
    settings = get_settings()
    prepare_prefect_env(get_settings().home.parent)  # one Prefect home shared by demo runs (faster restarts)

    console.print(f"[bold]Déclic — démonstration[/bold] (base {settings.resolved_database_url})")
    upgrade(settings.resolved_database_url)
    app = bootstrap(settings)
    load_reference(app.engine)

    population = Population(departement, seed=DEMO_SEED)
    stock = population.businesses(businesses, today=app.today())

    with app.transaction() as unit:
        upsert_businesses(unit.conn, stock, now=unit.now)
    console.print(f"Population synthétique : {len(stock)} TPE dans le département {departement}")

    token = add_partner(app.engine, "bge-demo", ["creation", "first_hire"], now=app.now())
    server, _thread = _start_api(api_port, app)
    try:
        batches = population.creation_events(events, known=stock, today=app.today())
        if batches and batches[0]:
            batches[0][0]["siret"] = README_SIRET  # the README's examples name this business
        answers = Counter()
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            for batch in batches:
                reply = http.post(f"{settings.base_url}/api/v1/events", json={"events": batch}, timeout=30)
                reply.raise_for_status()
                body = reply.json()
                answers.update(accepted=body["accepted"], duplicate=body["duplicate"], rejected=body["rejected"])
            # The same batch again: stored once, reported as duplicates.
            reply = http.post(f"{settings.base_url}/api/v1/events", json={"events": batches[0]}, timeout=30)
            answers.update(resent_duplicate=reply.json()["duplicate"])
    finally:
        server.should_exit = True
    console.print(f"API partenaire : {answers['accepted']} événements acceptés, {answers['rejected']} refusés, "
                  f"{answers['resent_duplicate']} doublons ignorés au renvoi")


    sample = resources.files("orchestrator.samples").joinpath("campagne-creation-35.yaml").read_text("utf-8")
    spec = load_spec(sample)
    apply_campaign(app.engine, spec, now=app.now())
    # The sample peers (a plumber, a baker) and adviser, and the offers: a plumber of Rennes Métropole meets the
    # plumber, a baker the baker, the others the adviser or the campaign's contact.

    samples = resources.files("orchestrator.samples")
    import_ambassadors(app.engine, samples.joinpath("ambassadeurs-35.csv").read_text("utf-8"), now=app.now())
    import_offers(app.engine, samples.joinpath("offres-35.csv").read_text("utf-8"), now=app.now())

    from orchestrator.prefect.flows import dispatch_flow, plan_flow, run_once  # lazy: Prefect, 1.5 s

    planned = run_once(plan_flow)
    # The demo's clock jumps to the last planned send slot, so every message is due now.

    with app.transaction() as unit:
        last_due = last_due_at(unit.conn)
    clock = last_due or app.clock()
    sent = run_once(dispatch_flow, now=clock.isoformat())
    sink.stop()

    by_family = _sent_by_family(app)
    summary = {
        "events_accepted": answers["accepted"], "events_rejected": answers["rejected"],
        "duplicates_ignored": answers["resent_duplicate"], "enrolled": planned.get("enrolled", 0),
        "planned": planned.get("messages", 0), "sent": sent.get("sent", 0), "received_by_smtp": sink.received,
        "by_family": by_family, "mail_folder": str(mails), "seconds": round(time.perf_counter() - started, 1),
        "skipped": {k.removeprefix("skipped_"): v for k, v in planned.items() if k.startswith("skipped_")},
    }
    _print_summary(console, summary)
    app.close()
    return summary


def _sent_by_family(app) -> dict[str, int]:
    with app.transaction() as unit:
        rows = sent_by_family(unit.conn)
    return {family or "autre": n for family, n in rows}


def _print_summary(console: Console, s: dict) -> None:

    table = Table(title="Résumé de la démonstration")
    table.add_column("Étape")
    table.add_column("Nombre", justify="right")
    for text, key in (("événements acceptés (API)", "events_accepted"), ("événements refusés", "events_rejected"),
                       ("doublons ignorés", "duplicates_ignored"), ("entreprises inscrites", "enrolled"),
                       ("messages planifiés", "planned"), ("e-mails envoyés", "sent"),
                       ("e-mails reçus par le serveur SMTP", "received_by_smtp")):
        table.add_row(text, count_fr(s[key]))
    console.print(table)
    fam = Table(title="Envoyés par famille de métiers")
    fam.add_column("Famille de métiers")
    fam.add_column("E-mails", justify="right")
    for code, n in s["by_family"].items():
        fam.add_row(family(code), count_fr(n))
    console.print(fam)
    if s["skipped"]:
        console.print("Non contactés : " + ", ".join(f"{label('skip_reason', k)} : {count_fr(v)}"
                                                     for k, v in s["skipped"].items()), highlight=False)
    console.print(f"Les e-mails envoyés, à lire : {s['mail_folder']}  —  durée {s['seconds']} s")


