"""E-mails rendered and delivered per second to a local SMTP server (aiosmtpd in its own process), through
the real dispatcher: claim, re-check, render, SMTP with a fenced handoff per message, record."""

from __future__ import annotations

import datetime as dt
import sys
import time

from bench.common import PY, emit, scratch_env, start_process
from integrations.smtp_sink import free_port

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def seed_outbox(engine, n: int, now: dt.datetime = NOW) -> None:
    """n planned e-mails due at `now` for n businesses of one campaign (bulk insert, not measured)."""
    from orchestrator.campaign_spec import load_spec
    from orchestrator.planner import message_context
    from orchestrator.synthetic import Population
    from store.admin import apply_campaign
    from store.businesses import upsert_businesses
    from store.models import Enrollment, Message
    from store.planning import business_view
    from tests.utils.factories import campaign_spec

    spec = load_spec(campaign_spec(families=["batiment", "alimentation", "hotellerie_restauration"]))
    campaign_id, _, _ = apply_campaign(engine, spec)
    facts = Population("35", seed=7).businesses(n)
    for f in facts:
        if not any(c.kind == "email" for c in f.contacts):
            from triggers.model import ContactPoint

            f.contacts.append(ContactPoint("email", f"contact.{f.siret}@exemple.fr", "bench"))
    with engine.begin() as conn:
        ids = upsert_businesses(conn, facts)
        from sqlalchemy import select

        from store.models import Business

        rows = conn.execute(select(Business.__table__)).all()
        enrol = [{"campaign_id": campaign_id, "business_id": r.id, "trigger_key": "creation",
                  "trigger_type": "creation", "arm": "treatment", "campaign_version": 1, "enrolled_at": now}
                 for r in rows]
        conn.execute(Enrollment.__table__.insert(), enrol)
        enrollment_ids = dict(conn.execute(select(Enrollment.__table__.c.business_id, Enrollment.__table__.c.id)).all())
        from orchestrator.planner import Candidate

        messages = []
        for r in rows:
            view = business_view(r)
            ctx = message_context(spec, view, Candidate(0, "creation", now.date(), view))
            messages.append({"campaign_id": campaign_id, "enrollment_id": enrollment_ids[r.id], "business_id": r.id,
                             "step": 0, "channel": "email", "template": "creation", "recipient": view.email,
                             "due_at": now, "status": "planned", "attempts": 0, "context": ctx, "created_at": now})
        conn.execute(Message.__table__.insert(), messages)
    assert len(ids) == n


def main(quick: bool = False) -> None:
    n = 2_000 if quick else 10_000
    port = free_port()
    env = scratch_env()
    env["DECLIC_SMTP_PORT"] = str(port)
    import os

    os.environ["DECLIC_SMTP_PORT"] = str(port)
    sink = start_process([PY, "-m", "integrations.smtp_sink", str(port)], env)
    sink.stdout.readline()  # the port: it listens
    from orchestrator.bootstrap import bootstrap
    from store.migrate import upgrade
    from store.reference import load_reference

    upgrade(env["DECLIC_DATABASE_URL"])
    app = bootstrap(clock=lambda: NOW)
    load_reference(app.engine)
    seed_outbox(app.engine, n)
    from orchestrator.dispatch import dispatch_all

    started = time.perf_counter()
    counts = dispatch_all(app)
    elapsed = time.perf_counter() - started
    app.close()
    sink.terminate()
    tail = sink.stdout.read()
    emit(figure="email_rendered_delivered_per_s", value=round(counts["sent"] / elapsed), messages=counts["sent"],
         seconds=round(elapsed, 2), store="sqlite", sink=tail.strip())


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
