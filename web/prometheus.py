"""`GET /metrics`: Déclic's operations figures in the Prometheus text format (prometheus-client).

Every figure is read from the store at scrape time by a custom collector (a few GROUP BY queries,
`store.ops_metrics`), so every web process answers the same and nothing is lost on a restart. Access:
with `DECLIC_METRICS_TOKEN` set, a scraper sends `Authorization: Bearer <token>`; without it, only loopback
and private addresses (the monitoring network) are answered, everyone else gets 404.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from store.ops_metrics import OpsFigures, ops_figures
from web.deps import app_of, settings_of

router = APIRouter(tags=["operations"])
LAG_BUCKETS = (1, 5, 15, 60, 300, 900, 3600)

# Rejected partner items are answered to the partner, never stored: this web process counts them (a counter per
# process, as Prometheus expects of several workers; it starts again at 0 on a restart, which rate() handles).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
PARTNER_REJECTS = Counter("declic_partner_events_rejected", "Éléments refusés aux partenaires par ce processus web, "
                          "par partenaire, champ et motif.", ["partner", "field", "reason"], registry=PROCESS_REGISTRY)


def count_rejects(partner: str, items: list[dict]) -> None:
    """Count a batch's rejected items; the motive is the reason's words before any value (bounded labels)."""
    for item in items:
        if item.get("status") == "rejected":
            motive = str(item.get("reason") or "").split(":")[0].strip()[:60]
            PARTNER_REJECTS.labels(partner, item.get("field") or "", motive).inc()


class StoreCollector:
    """Reads the store's figures at each collection (one `ops_figures` call)."""

    def __init__(self, engine, clock: Callable[[], dt.datetime]) -> None:
        self.engine, self.clock = engine, clock

    def collect(self):
        with self.engine.connect() as conn:
            f: OpsFigures = ops_figures(conn, self.clock())
        events = GaugeMetricFamily("declic_partner_events", "Événements reçus des partenaires, par statut "
                                   "(accepted, pending: entreprise pas encore connue).", labels=["partner", "status"])
        for (partner, status), n in sorted(f.partner_events.items()):
            events.add_metric([partner, status], n)
        yield events
        outbox = GaugeMetricFamily("declic_outbox_messages", "Messages de la boîte d'envoi par statut et canal.",
                                   labels=["status", "channel"])
        for (status, channel), n in sorted(f.outbox.items()):
            outbox.add_metric([status, channel], n)
        yield outbox
        oldest = GaugeMetricFamily("declic_outbox_oldest_due_seconds", "Âge du plus ancien message dû et pas "
                                   "encore envoyé, par canal.", labels=["channel"])
        for channel, seconds in sorted(f.oldest_due_seconds.items()):
            oldest.add_metric([channel], seconds)
        yield oldest
        # Totals since the start of the store: Prometheus's rate() works on them as on counters.
        sends = GaugeMetricFamily("declic_sends", "Issues d'envoi enregistrées, par canal et issue.",
                                  labels=["channel", "outcome"])
        for (channel, outcome), n in sorted(f.sends.items()):
            sends.add_metric([channel, outcome], n)
        yield sends
        yield GaugeMetricFamily("declic_events_waiting", "Événements pas encore planifiés.", value=f.events_waiting)
        yield GaugeMetricFamily("declic_events_oldest_waiting_seconds", "Âge du plus ancien événement pas encore "
                                "planifié.", value=f.oldest_waiting_seconds)
        lags = sorted(f.planning_lag_seconds)
        buckets = [(str(b), sum(1 for x in lags if x <= b)) for b in LAG_BUCKETS] + [("+Inf", len(lags))]
        yield HistogramMetricFamily("declic_planning_lag_seconds", "Délai entre la réception d'un événement et "
                                    "l'inscription, inscriptions de la dernière heure.", buckets=buckets,
                                    sum_value=sum(lags))
        feeds = GaugeMetricFamily("declic_feed_age_seconds", "Temps écoulé depuis la dernière collecte réussie "
                                  "(ou la création) de chaque flux.", labels=["feed", "status"])
        failures = GaugeMetricFamily("declic_feed_failures", "Échecs consécutifs de chaque flux.", labels=["feed"])
        for name, (age, failed, status) in sorted(f.feeds.items()):
            if age is not None:
                feeds.add_metric([name, status], age)
            failures.add_metric([name], failed)
        yield feeds
        yield failures


def _allowed(request: Request) -> bool:
    secret = settings_of(request).metrics_token
    token = secret.get_secret_value() if secret else None
    if token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    return address.is_loopback or address.is_private


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The Prometheus text exposition of the store's operations figures."""
    if not _allowed(request):
        raise HTTPException(status_code=404, detail="Not Found")
    registry = CollectorRegistry(auto_describe=False)
    declic = app_of(request)
    registry.register(StoreCollector(declic.engine, declic.clock))
    return Response(generate_latest(registry) + generate_latest(PROCESS_REGISTRY), media_type=CONTENT_TYPE_LATEST)
