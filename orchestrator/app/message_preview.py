"""What would leave: one business's message for a campaign, built by the planner's and the dispatcher's own code.

`declic templates preview --campaign` and the dashboard's campaign preview call `leaving_message`, so a preview
is never a second rendering path: the ambassador and offers come from `planner.personalise` (the same matching,
with this month's capacities), the variant from the same draw, the links and the rendering from
`dispatch.outgoing` (real signed and short links), the e-mail From and Reply-To from the SMTP channel's
`identity`. A message already planned for that business and campaign is shown as stored, since that is what
the dispatcher will send.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Engine

from integrations.base import OutgoingMessage
from orchestrator.app.bootstrap import App
from orchestrator.app.settings import Settings
from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import Candidate, personalise, recipient_for
from store.journeys import ambassador_name, ambassador_views, offer_views
from store.planning import business_view, deadline_of, latest_event, planned_message
from templates.preview import sample_context
from templates.render import TemplateLibrary

SAMPLE_NOTICE = ("Aperçu avec un expéditeur, un ambassadeur et des offres d'exemple : ajoutez --campaign pour voir "
                 "le message qui partira vraiment.")


@dataclass
class LeavingMessage:
    """A message as the dispatcher would hand it to its channel, and what was chosen for it."""

    message: OutgoingMessage
    template: str
    from_line: str | None = None  # e-mail only
    reply_to: str | None = None
    ambassador: str | None = None
    offers: list[str] = field(default_factory=list)
    variant: str | None = None
    planned_id: int | None = None  # a message already planned, shown as stored

    def header_lines(self) -> list[str]:
        """What was picked, in French, for a terminal or a page."""
        lines = []
        if self.planned_id is not None:
            lines.append(f"Message déjà prévu (n° {self.planned_id}), tel qu'il est enregistré.")
        if self.from_line:
            lines.append(f"De : {self.from_line}")
        if self.reply_to:
            lines.append(f"Répondre à : {self.reply_to}")
        lines.append(f"Ambassadeur : {self.ambassador or 'aucun (le contact de la campagne)'}")
        lines.append("Offres : " + ("; ".join(self.offers) if self.offers else "aucune"))
        if self.variant:
            lines.append(f"Variante : {self.variant}")
        return lines


def leaving_message(settings: Settings, engine: Engine, templates: TemplateLibrary, spec: CampaignSpec,
                    campaign_id: int | None, business: Any, channel: str, template: str, *,
                    trigger: str | None = None, now: dt.datetime | None = None) -> LeavingMessage:
    """The message `channel`/`template` of the campaign for one business (a `business` row of the store).

    `campaign_id` is None for a campaign not saved yet (the variant is then drawn as for campaign 0); `now` is
    the App's clock when not given.
    """
    from orchestrator.app.dispatch import outgoing  # start-up: 0.08 s of every command (measured)

    # At `now` when given: the links are signed then, as the dispatcher running at that moment would sign them.
    at = {"clock": (lambda: now)} if now is not None else {}
    app = App(settings=settings, engine=engine, templates=templates, **at)
    now = app.clock()
    view = business_view(business)
    trigger = trigger or (template if template in spec.triggers or not spec.triggers else spec.triggers[0])
    with engine.connect() as conn:
        stored = None
        if campaign_id is not None:
            stored = planned_message(conn, campaign_id, view.id, channel, template)
        if stored is not None:
            row: Any = stored
            meta = (stored.context or {}).get("meta") or {}
            ambassador_id = meta.get("ambassador_id")
            name = ambassador_name(conn, ambassador_id) if ambassador_id else None
            offers = [o.get("title") for o in stored.context.get("offers") or []]
            variant = stored.variant
        else:
            event = latest_event(conn, view.id, trigger)
            # The event's source as the message says it, like the planner (a partner by its name).
            candidate = Candidate(event.id if event else None, trigger,
                                  event.occurred_on if event else now.astimezone(app.zone).date(), view,
                                  deadline=deadline_of(trigger, event.payload if event else None),
                                  source=(event.name or event.source) if event else None)
            ambassadors = ambassador_views(conn, now, app.zone)
            chosen = personalise(spec, campaign_id or 0, view, candidate, ambassadors, offer_views(conn),
                                 {a.id: a.remaining for a in ambassadors})
            row = SimpleNamespace(id=0, context=chosen.context, channel=channel, template=template,
                                  variant=chosen.variant, recipient=recipient_for(channel, view) or "",
                                  campaign_id=campaign_id, business_id=view.id)
            name = chosen.ambassador.name if chosen.ambassador else None
            offers = [o.title for o in chosen.offers]
            variant = chosen.variant
    message = outgoing(app, row)
    from_line = reply_to = None
    if channel == "email":
        from integrations.email_smtp import identity  # start-up: 0.04 s of every command (measured)

        from_line, reply_to = identity(spec.model_dump(mode="json"), settings.mail_from, settings.mail_domain)
    return LeavingMessage(message=message, template=message.meta.get("template", ""), from_line=from_line,
                          reply_to=reply_to, ambassador=name, offers=offers, variant=variant,
                          planned_id=stored.id if stored is not None else None)


def sample_message(settings: Settings, templates: TemplateLibrary, business: Any, channel: str,
                   template: str) -> OutgoingMessage:
    """The message for one real business with the sample sender, ambassador and offers of `templates.preview`,
    rendered by the dispatcher's code with real link lengths (no campaign named)."""
    from orchestrator.app.dispatch import outgoing  # start-up: 0.08 s of every command (measured)

    view = business_view(business)
    context = sample_context(view.family or "autre", template)
    context.pop("links", None)
    context["business"] = {"siret": view.siret, "name": view.name, "metier": view.metier, "family": view.family,
                           "naf": view.naf_code, "family_label": view.family_label, "commune": view.commune_nom,
                           "postal_code": view.postal_code}
    row = SimpleNamespace(id=0, context=context, channel=channel, template=template, variant=None,
                          recipient=recipient_for(channel, view) or "", campaign_id=None, business_id=view.id)
    return outgoing(App(settings=settings, engine=None, templates=templates), row)  # type: ignore[arg-type]
