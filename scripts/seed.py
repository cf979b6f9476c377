"""Fill a store with N due e-mails through the real path: businesses, partner events, a campaign, the planner.

Used by the scale-out test and the benchmarks, so what they dispatch is what production would dispatch.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from orchestrator.app.bootstrap import App
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from orchestrator.core.synthetic import Population
from store.admin import add_partner, apply_campaign
from store.events import store_events
from store.models import Message
from triggers.partner_api import validate_item

MESSAGES = Message.__table__


def seed_due_emails(app: App, n: int, *, departement: str = "35", seed: int = 7,
                    campaign: str = "echelle-35") -> dt.datetime:
    """Plan exactly `n` e-mails due no later than the returned instant (use it as the dispatch clock)."""
    population = Population(departement, seed=seed)
    # A few more events than messages: the planner may skip some (windows, caps); the surplus is cancelled.
    batches = population.creation_events(int(n * 1.05) + 20, batch_size=1000, today=app.today(), bad_every=10**9)
    partner_token = add_partner(app.engine, f"partner-{campaign}", ["creation"], now=app.now())
    del partner_token  # the events go straight to the store; the API is tested elsewhere
    for batch in batches:
        events = []
        for i, item in enumerate(batch):
            item["contact"]["email"] = item["contact"].get("email") or f"contact.{item['siret']}@exemple.fr"
            event = validate_item(item, f"partner:{campaign}", campaign, i, today=app.today())
            if hasattr(event, "reason"):
                raise ValueError(f"synthetic event refused: {event}")
            events.append(event)
        store_events(app.engine, events, now=app.now())
    spec = load_spec({
        "name": campaign,
        "owner": {"name": "Département d'Ille-et-Vilaine", "territory": {"departements": [departement]}},
        "sender": {"name": "Département d'Ille-et-Vilaine",
                   "address": "1 avenue de la Préfecture, 35042 Rennes"},
        "contact": {"name": "Claire Le Goff", "metier": "conseillère", "phone": "02 99 02 35 36"},
        "triggers": ["creation"],
        "steps": [{"channel": "email", "delay": "0d", "template": "creation"}],
    })
    apply_campaign(app.engine, spec, now=app.now())
    plan_all(app)
    with app.engine.begin() as conn:
        ids = conn.execute(select(MESSAGES.c.id)
                           .where(MESSAGES.c.status == "planned", MESSAGES.c.channel == "email")
                           .order_by(MESSAGES.c.id)).scalars().all()
        if len(ids) < n:
            raise RuntimeError(f"only {len(ids)} e-mails planned, {n} wanted")
        surplus = ids[n:]
        for start in range(0, len(surplus), 1000):
            conn.execute(update(MESSAGES).where(MESSAGES.c.id.in_(surplus[start:start + 1000]))
                         .values(status="cancelled", last_error="surplus of the seed"))
        last_due = conn.execute(select(func.max(MESSAGES.c.due_at))
                                .where(MESSAGES.c.status == "planned")).scalar()
    return last_due
