"""E-mails rendered and delivered per second to a local SMTP server (aiosmtpd in its own process), through
the real dispatcher: claim, re-check, render, SMTP with a fenced handoff per message, record.

Beside it, in the same run, the bare baseline on the same work: the same messages rendered and built beforehand
(wire bytes), sent by a plain smtplib client in its own process over the same number of pipelined connections
(envelope and DATA in one write, body and "." in another), with no store, no rendering, no fence. Pairs run
alternately (bare first in every other pair), each against a fresh sink process; the ratio is Déclic's rate over
the bare rate per pair, median reported. The Déclic figure counts every per-message cost of the dispatcher,
the settlement of accepted handoffs at the fence (`Fence.answered`: one UPDATE and one history row per message,
inside the next handoff's commit) included."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from bench.common import PY, emit, machine_busy, scratch_env, start_process
from integrations.smtp_sink import free_port

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def seed_outbox(engine, n: int, now: dt.datetime = NOW) -> None:
    """n planned e-mails due at `now` for n businesses of one campaign (bulk insert, not measured)."""
    from orchestrator.core.campaign_spec import load_spec
    from orchestrator.core.planner import message_context
    from orchestrator.core.synthetic import Population
    from store.admin import apply_campaign
    from store.businesses import upsert_businesses
    from store.models import Enrollment, Message
    from store.planning import business_view
    from tests.utils.factories import campaign_spec

    spec = load_spec(campaign_spec(families=["batiment", "alimentation", "hotellerie_restauration"]))
    campaign_id, _, _ = apply_campaign(engine, spec, now=now)
    facts = Population("35", seed=7).businesses(n, today=now.date())
    for f in facts:
        if not any(c.kind == "email" for c in f.contacts):
            from triggers.model import ContactPoint

            f.contacts.append(ContactPoint("email", f"contact.{f.siret}@exemple.fr", "bench"))
    with engine.begin() as conn:
        ids = upsert_businesses(conn, facts, now=now)
        from sqlalchemy import select

        from store.models import Business

        rows = conn.execute(select(Business.__table__)).all()
        enrol = [{"campaign_id": campaign_id, "business_id": r.id, "trigger_key": "creation",
                  "trigger_type": "creation", "arm": "treatment", "campaign_version": 1, "enrolled_at": now}
                 for r in rows]
        conn.execute(Enrollment.__table__.insert(), enrol)
        enrollment_ids = dict(conn.execute(select(Enrollment.__table__.c.business_id, Enrollment.__table__.c.id)).all())
        from orchestrator.core.planner import Candidate

        messages = []
        for r in rows:
            view = business_view(r)
            ctx = message_context(spec, view, Candidate(0, "creation", now.date(), view))
            messages.append({"campaign_id": campaign_id, "enrollment_id": enrollment_ids[r.id], "business_id": r.id,
                             "step": 0, "channel": "email", "template": "creation", "recipient": view.email,
                             "due_at": now, "status": "planned", "attempts": 0, "context": ctx, "created_at": now})
        conn.execute(Message.__table__.insert(), messages)
    assert len(ids) == n


def one_run(n: int, workers: int, store_url: str | None, connections: int, settle: bool = True) -> dict:
    """Seed a fresh store, start a sink process, run `workers` dispatcher processes; the run's figures."""
    import json
    import subprocess

    env = scratch_env(store_url)
    if store_url:  # a fresh schema of its own in the PostgreSQL database
        env["DECLIC_DATABASE_URL"] = store_url = fresh_schema(store_url)
        os.environ["DECLIC_DATABASE_URL"] = store_url
    port = free_port()
    env.update(DECLIC_SMTP_PORT=str(port), DECLIC_SMTP_CONNECTIONS=str(connections))
    try:  # the sink is on loopback, not Orange or Gmail: no provider's pace (the synthetic addresses use theirs)
        from integrations.email_smtp import unpaced_policy

        env["DECLIC_MAIL_DOMAIN_POLICY"] = unpaced_policy()
    except ImportError:  # the code before issue 18 (a "before" figure) has no domain policy
        pass
    from orchestrator.app.bootstrap import bootstrap
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(env["DECLIC_DATABASE_URL"])
    app = bootstrap(clock=lambda: NOW)
    load_reference(app.engine)
    seed_outbox(app.engine, n)
    app.close()
    sink = start_process([PY, "-m", "integrations.smtp_sink", str(port)], env)
    sink.stdout.readline()  # the port: it listens
    load = os.getloadavg()[0]
    busy_before, children_before = machine_busy(), children_cpu()
    go = Path(env["DECLIC_HOME"]) / "go"
    module = ["orchestrator.app.dispatch"] if settle else ["bench.bench_email", "--dispatch-unsettled"]
    runners = [subprocess.Popen([PY, "-m", *module, "--now", NOW.isoformat(), "--wait-for", str(go)],
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(workers)]
    for runner in runners:  # every dispatcher set up before the first claim
        if runner.stdout.readline().strip() != "ready":
            raise RuntimeError(runner.stderr.read()[-2000:])
    go.touch()
    outs = [r.communicate(timeout=1800) for r in runners]
    busy_after = machine_busy()
    sink.terminate()
    tail = sink.stdout.read().strip()
    sink.wait()
    ours_all = children_cpu() - children_before  # dispatchers and sink, start-up included
    for r, (_, err) in zip(runners, outs, strict=True):
        if r.returncode:
            raise RuntimeError(err[-2000:])
    if store_url:
        drop_schema(store_url)
    done = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    elapsed = max(d["ended"] for d in done) - min(d["started"] for d in done)
    sent = sum(d.get("sent", 0) for d in done)
    received, duplicates, sink_cpu = (int(tail.split()[i]) if i < 4 else float(tail.split()[i]) for i in (1, 3, 5))
    span = busy_after[1] - busy_before[1]
    others = max((busy_after[0] - busy_before[0] - ours_all) / span, 0.0)  # cores the rest of the machine kept
    return {"others_cores": others, "rate": sent / elapsed, "sent": sent, "seconds": elapsed,
            "ours_cpu_ms": 1000 * sum(d["cpu"] for d in done) / sent,
            "sink_cpu_ms": 1000 * sink_cpu / max(received, 1), "received": received, "duplicates": duplicates,
            "load": load}


def prerendered(n: int, path: Path) -> None:
    """The n messages of `seed_outbox`, rendered and built to wire bytes (dot-stuffed, CRLF-ended), pickled."""
    import pickle

    from sqlalchemy import select

    from integrations.email_smtp import _LEADING_DOT, build_email
    from orchestrator.app.bootstrap import bootstrap
    from orchestrator.app.dispatch import outgoing
    from store.migrate import upgrade
    from store.outbox import MESSAGES
    from store.reference import load_reference

    env = scratch_env(None)
    upgrade(env["DECLIC_DATABASE_URL"])
    app = bootstrap(clock=lambda: NOW)
    load_reference(app.engine)
    seed_outbox(app.engine, n)
    with app.engine.connect() as conn:
        rows = conn.execute(select(MESSAGES).order_by(MESSAGES.c.id)).all()
    names: dict = {}
    out = []
    for row in rows:
        data = _LEADING_DOT.sub(b"..", build_email(outgoing(app, row, names), app.settings.mail_from))
        out.append((row.recipient, data if data.endswith(b"\r\n") else data + b"\r\n"))
    app.close()
    path.write_bytes(pickle.dumps(out))


def bare_client(path: str, port: int, connections: int) -> None:
    """The bare baseline's client (`--bare-client FILE PORT C`): pre-built messages over C pipelined smtplib
    connections opened before the clock starts; prints started, ended, cpu and sent as JSON."""
    import itertools
    import json
    import pickle
    import smtplib
    import socket
    import threading
    import time

    messages = pickle.loads(Path(path).read_bytes())
    taken = itertools.count()
    sent = [0] * connections
    opened = []
    for _ in range(connections):
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.ehlo()
        opened.append(smtp)

    def work(slot: int) -> None:
        smtp = opened[slot]
        while (i := next(taken)) < len(messages):
            rcpt, data = messages[i]
            smtp.send(f"MAIL FROM:<bonjour@declic.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
            codes = [smtp.getreply()[0] for _ in range(3)]
            if codes != [250, 250, 354]:
                raise RuntimeError(f"bare client refused: {codes}")
            smtp.send(data + b".\r\n")
            if smtp.getreply()[0] == 250:
                sent[slot] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(connections)]
    began, cpu = time.time(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended, cpu = time.time(), time.process_time() - cpu
    for smtp in opened:
        smtp.quit()
    print(json.dumps({"started": began, "ended": ended, "cpu": cpu, "sent": sum(sent)}), flush=True)


def bare_run(path: Path, connections: int) -> dict:
    """One run of the bare baseline against a fresh sink process: its rate and CPU per message."""
    import json
    import subprocess

    env = scratch_env(None)
    port = free_port()
    sink = start_process([PY, "-m", "integrations.smtp_sink", str(port)], env)
    sink.stdout.readline()
    done = subprocess.run([PY, "-m", "bench.bench_email", "--bare-client", str(path), str(port), str(connections)],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
    sink.terminate()
    tail = sink.stdout.read().strip()
    sink.wait()
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    received, sink_cpu = int(tail.split()[1]), float(tail.split()[5])
    return {"rate": out["sent"] / (out["ended"] - out["started"]), "sent": out["sent"],
            "cpu_ms": 1000 * out["cpu"] / max(out["sent"], 1), "sink_cpu_ms": 1000 * sink_cpu / max(received, 1)}


def children_cpu() -> float:
    """CPU seconds of the finished child processes of this one."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh_schema(url: str) -> str:
    """A new schema in the PostgreSQL database at `url`, as the tests do (dropped with the database)."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    """Drop the schema `fresh_schema` made (its name is in the URL's search_path option)."""
    from sqlalchemy import text

    from store.db import dispose_engines, get_engine

    schema = url.rsplit("search_path%3D", 1)[1]
    base = url.split("options=-csearch_path")[0].rstrip("?&")
    dispose_engines()
    with get_engine(base).begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    dispose_engines()


def main(argv: list[str]) -> None:
    """`python -m bench.bench_email [--quick] [--repeat N] [--workers K] [--connections C] [--postgres URL]`."""
    import argparse
    import statistics
    import tempfile

    if argv[:1] == ["--bare-client"]:
        return bare_client(argv[1], int(argv[2]), int(argv[3]))
    if argv[:1] == ["--dispatch-unsettled"]:  # the dispatcher without the settlement at the fence (its cost)
        from orchestrator.app import dispatch
        from store.outbox import Fence

        Fence.answered = lambda self, result: None
        raise SystemExit(dispatch.main(argv[1:]))

    parser = argparse.ArgumentParser(prog="python -m bench.bench_email")
    parser.add_argument("--quick", action="store_true", help="2,000 e-mails, one run")
    parser.add_argument("--repeat", type=int, default=3, help="runs (the machine is shared: best and median)")
    parser.add_argument("--workers", type=int, default=1, help="dispatcher processes on the same outbox")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per dispatcher")
    parser.add_argument("--postgres", metavar="URL", help="store on PostgreSQL instead of a SQLite file")
    parser.add_argument("--no-bare", action="store_true", help="leave out the bare baseline")
    parser.add_argument("--settlement-cost", action="store_true",
                        help="also run the dispatcher without settling accepted handoffs at the fence")
    args = parser.parse_args(argv)
    n, repeat = (2_000, 1) if args.quick else (10_000, args.repeat)
    wire = Path(tempfile.mkdtemp(prefix="declic-bare-")) / "messages.pickle"
    if not args.no_bare:
        prerendered(n, wire)
    runs, bares = [], []
    for pair in range(repeat):  # alternate pairs: the machine's load shifts, both sides see it alike
        if not args.no_bare and pair % 2:
            bares.append(bare_run(wire, args.connections * args.workers))
        runs.append(one_run(n, args.workers, args.postgres, args.connections))
        if not args.no_bare and not pair % 2:
            bares.append(bare_run(wire, args.connections * args.workers))
    unsettled = [one_run(n, args.workers, args.postgres, args.connections, settle=False)
                 for _ in range(repeat if args.settlement_cost else 0)]
    rates = [r["rate"] for r in runs]
    ours = statistics.median(r["ours_cpu_ms"] for r in runs)
    sink = statistics.median(r["sink_cpu_ms"] for r in runs)
    emit(figure="email_rendered_delivered_per_s", value=round(max(rates)), median=round(statistics.median(rates)),
         runs=[round(x) for x in rates], messages=n, workers=args.workers, connections=args.connections,
         store="postgresql" if args.postgres else "sqlite", duplicates=sum(r["duplicates"] for r in runs),
         received=[r["received"] for r in runs], load_1min=[round(r["load"], 1) for r in runs],
         # CPU cores the other processes of the machine kept busy during each run (of 2).
         others_cores=[round(r["others_cores"], 2) for r in runs],
         dispatcher_cpu_ms_per_message=round(ours, 3), sink_cpu_ms_per_message=round(sink, 3),
         # What two free cores could do at these CPU costs: the dispatchers and the sink share them.
         cpu_bound_per_s=round(min(2 / ((ours + sink) / 1000), 1000 / ours * args.workers, 1000 / sink)))
    if unsettled:
        without = statistics.median(r["ours_cpu_ms"] for r in unsettled)
        emit(figure="email_fence_settlement_cost", dispatcher_cpu_ms_per_message=round(ours, 3),
             without_settlement_cpu_ms_per_message=round(without, 3), settlement_cpu_ms=round(ours - without, 3),
             rate=round(statistics.median(rates)),
             rate_without_settlement=round(statistics.median(r["rate"] for r in unsettled)))
    if bares:
        ratios = [r["rate"] / b["rate"] for r, b in zip(runs, bares, strict=True)]
        emit(figure="email_declic_vs_bare", declic=round(statistics.median(rates)),
             bare=round(statistics.median(b["rate"] for b in bares)), ratio=round(statistics.median(ratios), 3),
             ratios=[round(x, 3) for x in ratios], bare_runs=[round(b["rate"]) for b in bares],
             declic_cpu_ms_per_message=round(ours, 3),
             bare_client_cpu_ms_per_message=round(statistics.median(b["cpu_ms"] for b in bares), 3),
             bare_sink_cpu_ms_per_message=round(statistics.median(b["sink_cpu_ms"] for b in bares), 3),
             messages=n, connections=args.connections * args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
