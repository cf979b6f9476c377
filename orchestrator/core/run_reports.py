"""What each flow run did, as the tables and text an operator reads in the Prefect UI (artifacts).

Pure: counters and rows in, `Artifact` values out (French labels, a stable key per kind so that the latest of
each kind is one click away in the UI). `orchestrator.prefect.flows` only hands them to Prefect's artifact API.
Also the tallies the services fill while they work (`tally_plan`, `tally_sends`) and the log lines of a run
(`log_line`: one JSON object per event when `DECLIC_LOG_FORMAT=json`, a French sentence otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.labels import SKIP_REASONS

# Artifact keys: lowercase letters, digits and dashes (Prefect's rule); one per kind of report.
KEYS = {
    "plan": "declic-plan", "plan-summary": "declic-plan-resume",
    "dispatch": "declic-dispatch", "dispatch-summary": "declic-dispatch-resume",
    "ingest": "declic-ingest-{source}", "ingest-rejects": "declic-ingest-{source}-rejets",
    "feeds": "declic-feeds", "rollup": "declic-rollup",
}

SEND_LABELS = {"sent": "envoyés", "deferred": "reportés", "failed": "en échec", "unknown": "issue inconnue",
               "cancelled": "annulés"}
CHANNEL_LABELS = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel", "webhook": "webhook"}
INGEST_LABELS = {"sirene": "Sirene", "bodacc": "BODACC", "deadlines": "calendrier réglementaire"}
FIRST_REJECTS = 20


@dataclass(frozen=True)
class Artifact:
    """One Prefect artifact to publish: a table (list of rows) or a markdown text."""

    key: str
    description: str
    table: Sequence[Mapping[str, Any]] | None = None
    markdown: str | None = None


def _n(value: int) -> str:
    # French thousands separator (narrow no-break space), as in the CLI.
    return f"{value:,}".replace(",", "\u202f")


def _campaign(names: Mapping[int, str], campaign_id: int | None) -> str:
    if campaign_id is None:
        return "(sans campagne)"
    return names.get(campaign_id, f"campagne {campaign_id}")


def _paused_lines(paused: Sequence[tuple[str, str | None]]) -> list[str]:
    if not paused:
        return ["Aucune campagne en pause."]
    return ["Campagnes en pause :"] + [f"- **{name}** : {reason or 'mise en pause par un opérateur.'}"
                                       for name, reason in paused]


# --- planning ---


def tally_plan(by_campaign: Counter[tuple[int, str]], plan: Any) -> None:
    """Count a planner decision per campaign: (campaign id, "enrolled" | "held_out" | "skipped_<reason>")."""
    for e in plan.enrollments:
        by_campaign[(e.campaign_id, "held_out" if e.arm == "holdout" else "enrolled")] += 1
    for s in plan.skipped:
        if s.reason != "holdout":  # already counted as held out
            by_campaign[(s.campaign_id, f"skipped_{s.reason}")] += 1


def tally_followups(by_campaign: Counter[tuple[int, str]], decisions: Iterable[Any]) -> None:
    """Count later-step decisions per campaign: (campaign id, "followups" | "stopped_<reason>")."""
    for d in decisions:
        by_campaign[(d.campaign_id, f"stopped_{d.reason}" if d.reason else "followups")] += 1


def plan_artifacts(total: Mapping[str, int], by_campaign: Mapping[tuple[int, str], int],
                   names: Mapping[int, str], paused: Sequence[tuple[str, str | None]]) -> list[Artifact]:
    """The `plan` run: a table per campaign and a summary (totals, skipped by reason, campaigns paused)."""
    rows = []
    for cid in sorted({cid for cid, _ in by_campaign}, key=lambda c: _campaign(names, c)):
        counts = {k: v for (c, k), v in by_campaign.items() if c == cid}
        skipped = {k.removeprefix("skipped_"): v for k, v in counts.items() if k.startswith("skipped_")}
        stopped = {k.removeprefix("stopped_"): v for k, v in counts.items() if k.startswith("stopped_")}
        rows.append({
            "Campagne": _campaign(names, cid),
            "Inscrites (à contacter)": counts.get("enrolled", 0),
            "Groupe témoin": counts.get("held_out", 0),
            "Couvertes": counts.get("enrolled", 0) + counts.get("held_out", 0),
            "Étapes suivantes planifiées": counts.get("followups", 0),
            "Écartées": sum(skipped.values()),
            "Motifs d'écart": _reasons(skipped) or "-",
            "Parcours arrêtés": _reasons(stopped) or "-",
        })
    skipped = Counter()
    for (_, k), v in by_campaign.items():
        if k.startswith("skipped_"):
            skipped[k.removeprefix("skipped_")] += v
    lines = ["# Planification", "",
             f"- Événements planifiés : {_n(total.get('events', 0))}",
             f"- Inscriptions : {_n(total.get('enrolled', 0) + total.get('occurrence_enrolled', 0))} "
             f"(dont groupe témoin : {_n(sum(v for (_, k), v in by_campaign.items() if k == 'held_out'))})",
             f"- Messages planifiés : {_n(total.get('messages', 0) + total.get('occurrence_messages', 0))}",
             f"- Étapes suivantes planifiées : {_n(total.get('followup_messages', 0))}",
             f"- Écartées : {_n(sum(skipped.values()))}"]
    lines += [f"  - {SKIP_REASONS.get(reason, reason)} : {_n(n)}" for reason, n in skipped.most_common()]
    if not by_campaign and not total:
        lines += ["", "Rien à planifier."]
    lines += [""] + _paused_lines(paused)
    return [Artifact(KEYS["plan"], "Planification par campagne", table=rows or [_empty_plan()]),
            Artifact(KEYS["plan-summary"], "Planification : résumé", markdown="\n".join(lines))]


def _empty_plan() -> dict[str, Any]:
    return {"Campagne": "(aucune)", "Inscrites (à contacter)": 0, "Groupe témoin": 0, "Couvertes": 0,
            "Étapes suivantes planifiées": 0, "Écartées": 0, "Motifs d'écart": "-", "Parcours arrêtés": "-"}


def _reasons(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{SKIP_REASONS.get(k, k)} : {_n(v)}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


# --- dispatch ---


OUTCOME_KIND = {"sent": "sent", "transient": "deferred", "deferred": "deferred", "permanent": "failed",
                "abandoned": "unknown"}


def tally_sends(by_outcome: Counter[tuple[int, str, str]], rows: Sequence[Any], results: Iterable[Any],
                cancelled: Mapping[int, str]) -> None:
    """Count one delivered batch per (campaign id, channel, outcome): sent, deferred, failed, unknown,
    cancelled. A paused campaign's messages go back to wait (deferred); the other stops are cancellations."""
    by_id = {row.id: row for row in rows}
    for r in results:
        row = by_id.get(r.message_id)
        if row is not None:
            outcome = getattr(r.outcome, "value", r.outcome)
            by_outcome[(row.campaign_id, row.channel, OUTCOME_KIND.get(outcome, "unknown"))] += 1
    for message_id, reason in cancelled.items():
        row = by_id.get(message_id)
        if row is not None:
            kind = "deferred" if reason == "campaign_paused" else "cancelled"
            by_outcome[(row.campaign_id, row.channel, kind)] += 1


def dispatch_artifacts(total: Mapping[str, int], by_outcome: Mapping[tuple[int, str, str], int],
                       names: Mapping[int, str], paused: Sequence[tuple[str, str | None]]) -> list[Artifact]:
    """The `dispatch` run: a table per campaign and channel, and a summary with the campaigns paused."""
    rows = []
    for cid, channel in sorted({(c, ch) for c, ch, _ in by_outcome},
                               key=lambda k: (_campaign(names, k[0]), k[1])):
        row: dict[str, Any] = {"Campagne": _campaign(names, cid), "Canal": CHANNEL_LABELS.get(channel, channel)}
        for kind, label in SEND_LABELS.items():
            row[label.capitalize()] = by_outcome.get((cid, channel, kind), 0)
        rows.append(row)
    per_channel: Counter[tuple[str, str]] = Counter()
    for (_, channel, kind), n in by_outcome.items():
        per_channel[(channel, kind)] += n
    lines = ["# Envoi", "",
             f"- Envoyés : {_n(total.get('sent', 0))}",
             f"- Reportés (nouvel essai prévu) : {_n(total.get('retry', 0))}",
             f"- En échec : {_n(total.get('failed', 0))}",
             f"- Issue inconnue (repris par un autre envoi) : {_n(total.get('abandoned', 0))}",
             f"- Annulés : {_n(sum(v for k, v in total.items() if k.startswith('cancelled_')))}"]
    for channel in sorted({ch for ch, _ in per_channel}):
        parts = ", ".join(f"{label} {_n(per_channel[(channel, kind)])}" for kind, label in SEND_LABELS.items()
                          if per_channel[(channel, kind)])
        lines.append(f"- {CHANNEL_LABELS.get(channel, channel)} : {parts}")
    if total.get("paused_campaigns"):
        lines.append(f"- Campagnes mises en pause pendant cet envoi : {_n(total['paused_campaigns'])}")
    if not total:
        lines += ["", "Rien à envoyer."]
    lines += [""] + _paused_lines(paused)
    empty = {"Campagne": "(aucune)", "Canal": "-", **{label.capitalize(): 0 for label in SEND_LABELS.values()}}
    return [Artifact(KEYS["dispatch"], "Envoi par campagne et par canal", table=rows or [empty]),
            Artifact(KEYS["dispatch-summary"], "Envoi : résumé", markdown="\n".join(lines))]


# --- intake ---


@dataclass
class FirstRejects:
    """A reject sink (the `rejects=` of the ingesters) that keeps the first rejected lines: line, field,
    reason. The raw line is not kept: a partner's line may hold a person's contact details."""

    limit: int = FIRST_REJECTS
    rows: list[dict[str, Any]] = field(default_factory=list)

    def write(self, reject: Any) -> None:
        if len(self.rows) < self.limit:
            self.rows.append({"Ligne": "" if reject.line is None else reject.line, "Champ": reject.field,
                              "Motif": reject.reason})


def ingest_artifacts(source: str, what: str, report: Mapping[str, Any],
                     first_rejects: Sequence[Mapping[str, Any]] = ()) -> list[Artifact]:
    """An ingest run (Sirene, BODACC, the regulatory calendar): read, accepted, rejected by reason, the
    first rejected lines, the events by type."""
    label = INGEST_LABELS.get(source, source)
    rejected = dict(report.get("rejected") or {})
    lines = [f"# Collecte {label}", "", f"Source : {what}", "",
             f"- Lignes lues : {_n(report.get('read', 0))}",
             f"- Acceptées : {_n(report.get('accepted', 0))}",
             f"- Rejetées : {_n(sum(rejected.values()))}"]
    lines += [f"  - {reason} : {_n(n)}" for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1])]
    events = dict(report.get("events") or {})
    lines.append(f"- Événements : {_n(sum(events.values()))}")
    lines += [f"  - {kind} : {_n(n)}" for kind, n in sorted(events.items())]
    for kind, n in sorted((report.get("skipped") or {}).items()):
        lines.append(f"- Ignorées ({kind}) : {_n(n)}")
    if report.get("due"):
        lines.append("- Échéances du jour : " + ", ".join(report["due"]))
    out = [Artifact(KEYS["ingest"].format(source=source), f"Collecte {label} : résumé",
                    markdown="\n".join(lines))]
    if rejected:
        rows = list(first_rejects) or [{"Ligne": "", "Champ": "", "Motif": r} for r in rejected]
        out.append(Artifact(KEYS["ingest-rejects"].format(source=source),
                            f"Collecte {label} : premières lignes rejetées", table=rows))
    return out


def feeds_artifacts(outcomes: Sequence[Mapping[str, Any]]) -> list[Artifact]:
    """A `watch-feeds` run: each feed's outcome."""
    rows = [{"Flux": o["feed"], "Résultat": "échec" if o.get("failed") else "réussi",
             "État": o.get("state", ""), "Événements": o.get("events", 0)} for o in outcomes]
    return [Artifact(KEYS["feeds"], "Flux surveillés : résultat de chaque flux",
                     table=rows or [{"Flux": "(aucun flux dû)", "Résultat": "-", "État": "-", "Événements": 0}])]


def rollup_artifacts(day: str | None, campaigns: Sequence[tuple[str, int, dt.datetime | None]]) -> list[Artifact]:
    """A `metrics-rollup` run: the campaigns refreshed (rows written, when)."""
    rows = [{"Campagne": name, "Lignes d'indicateurs": n,
             "Calculé le": at.strftime("%d/%m/%Y %H:%M UTC") if at else "-"} for name, n, at in campaigns]
    return [Artifact(KEYS["rollup"], f"Indicateurs recalculés ({day or 'hier'})",
                     table=rows or [{"Campagne": "(aucune)", "Lignes d'indicateurs": 0, "Calculé le": "-"}])]


# --- log lines ---


def log_line(fmt: str, event: str, text: str, **fields: Any) -> str:
    """One log line: a JSON object (`fmt` "json": event name, then the fields: run id, campaign, channel,
    counts; never personal data or tokens) or the French sentence `text`."""
    if fmt == "json":
        return json.dumps({"event": event, **fields}, ensure_ascii=False, default=str, sort_keys=False)
    return text
