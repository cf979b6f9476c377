"""The dispatcher against a recording `Outbox` and a recording channel: no database, no network.

What it checks is the dispatcher's own order and bookkeeping: claim, stop what must not leave, the campaigns'
voices and the channels' facts on the messages, stop again right before leaving, hand over behind the fence,
then record everything the channels answered in one call (with the addresses refused for good, the failing
campaigns and the pause policy)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from integrations.base import OutgoingMessage
from orchestrator.app.bootstrap import App
from orchestrator.app.dispatch import Outbox, PausePolicy, StoreOutbox, dispatch_batch
from orchestrator.app.settings import Settings
from orchestrator.core.outcomes import Outcome, SendResult

NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
VOICE = {"sender": {"name": "Département d'Ille-et-Vilaine"}}


def row(message_id: int, *, campaign_id: int = 1, channel: str = "email", template: str = "creation") -> Any:
    return SimpleNamespace(id=message_id, campaign_id=campaign_id, business_id=100 + message_id, channel=channel,
                           template=template, variant=None, recipient=f"patron{message_id}@exemple.fr",
                           context={"business": {"family": "batiment", "siret": f"{message_id:014d}"}})


class Templates:
    """Resolves every name to itself and renders a one-line body; the template "casse" cannot render."""

    def resolve(self, channel: str, template: str, family: str, variant: str | None) -> str:
        return f"{channel}/{template}"

    def render(self, name: str, context: dict) -> Any:
        if name.endswith("/casse"):
            raise ValueError("variable inconnue")
        return SimpleNamespace(subject="Bonjour", body=f"Bonjour {context['business']['siret']}", html=None)


class Fence:
    """Records each handoff; the ids in `lost` were taken by another worker meanwhile."""

    def __init__(self, calls: list, lost: set[int]) -> None:
        self.calls, self.lost = calls, lost
        self.handed_over: set[int] = set()
        self.settled: set[int] = set()

    def __call__(self, message_id: int, rfc_message_id: str) -> bool:
        self.calls.append(("handoff", message_id, rfc_message_id))
        if message_id in self.lost:
            return False
        self.handed_over.add(message_id)
        return True

    def answered(self, result: SendResult) -> None:
        if result.outcome is Outcome.SENT:
            self.settled.add(result.message_id)

    def close(self) -> None:
        self.calls.append(("fence closed",))


class RecordingOutbox:
    """The `Outbox` as a list of calls: answers what the test set up, remembers what it was asked."""

    def __init__(self, rows: Sequence[Any], *, blocked: dict[int, str] | None = None,
                 late: dict[int, str] | None = None, facts: dict[int, Any] | None = None,
                 lost: set[int] | None = None) -> None:
        self.rows, self.blocked, self.late = list(rows), blocked or {}, late or {}
        self.facts_by_id, self.lost = facts or {}, lost or set()
        self.calls: list[tuple] = []
        self.recorded: dict[str, Any] = {}

    def claim(self, now: dt.datetime, limit: int, owner: str, lease: dt.timedelta) -> list[Any]:
        self.calls.append(("claim", now, limit, owner, lease))
        rows, self.rows = self.rows[:limit], self.rows[limit:]
        return rows

    def stop(self, rows: Sequence[Any], owner: str, now: dt.datetime, *, consent: bool) -> dict[int, str]:
        self.calls.append(("stop", [r.id for r in rows], consent))
        reasons = self.blocked if consent else self.late
        return {r.id: reasons[r.id] for r in rows if r.id in reasons}

    def voices(self, campaign_ids) -> dict[int, dict[str, Any]]:
        self.calls.append(("voices", sorted(campaign_ids)))
        return dict.fromkeys(campaign_ids, VOICE)

    def facts(self, by_channel) -> dict[int, Any]:
        self.calls.append(("facts", {name: [m.message_id for m in batch] for name, batch in by_channel.items()}))
        return self.facts_by_id

    def fence(self, owner: str, clock) -> Fence:
        self.calls.append(("fence", owner))
        return Fence(self.calls, self.lost)

    def record(self, results, owner, now, fence, *, refused, retry_base, failing, pause):
        self.calls.append(("record",))
        self.recorded = {"results": {r.message_id: r for r in results}, "owner": owner, "now": now,
                         "handed_over": set(fence.handed_over), "refused": list(refused), "failing": set(failing),
                         "pause": pause, "retry_base": retry_base}
        counts = Counter({"sent": 0, "failed": 0, "abandoned": 0})
        for r in results:
            counts[{Outcome.SENT: "sent", Outcome.ABANDONED: "abandoned"}.get(r.outcome, "failed")] += 1
        return dict(counts), (dict.fromkeys(failing, "trop d'échecs") if failing else {})


class Channel:
    """A channel that hands each message over behind the fence; `answers` says what the peer replies."""

    name = "email"

    def __init__(self, answers: dict[int, SendResult] | None = None) -> None:
        self.answers = answers or {}
        self.batches: list[list[OutgoingMessage]] = []

    def send(self, batch, on_handoff=None, on_answer=None) -> list[SendResult]:
        self.batches.append(list(batch))
        out = []
        for m in batch:
            if on_handoff is not None and not on_handoff(m.message_id):
                out.append(SendResult(m.message_id, Outcome.ABANDONED, "bail perdu"))
                continue
            out.append(self.answers.get(m.message_id, SendResult(m.message_id, Outcome.SENT, "250 OK")))
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def app(tmp_path) -> App:
    settings = Settings(home=tmp_path, secret_key="a-test-secret-of-32-characters!!", base_url="https://declic.test",
                        dispatch_batch_size=10)
    built = App(settings=settings, engine=None, templates=Templates(), clock=lambda: NOW)  # type: ignore[arg-type]
    built.channels["email"] = Channel()
    return built


def names(outbox: RecordingOutbox) -> list[str]:
    return [call[0] for call in outbox.calls]


def test_the_real_store_and_the_fake_both_are_an_outbox() -> None:
    assert isinstance(StoreOutbox(engine=None), Outbox)  # type: ignore[arg-type]
    assert isinstance(RecordingOutbox([]), Outbox)


def test_nothing_due_is_one_claim_and_nothing_else(app: App) -> None:
    outbox = RecordingOutbox([])
    assert dispatch_batch(app, now=NOW, outbox=outbox) == Counter()
    assert names(outbox) == ["claim"]


def test_a_batch_is_claimed_checked_rendered_fenced_and_recorded_in_that_order(app: App) -> None:
    outbox = RecordingOutbox([row(1), row(2, campaign_id=2)])
    counts = dispatch_batch(app, now=NOW, owner="worker-a", outbox=outbox)
    assert names(outbox) == ["claim", "stop", "voices", "facts", "stop", "fence", "handoff", "handoff",
                             "fence closed", "record"]
    claim = outbox.calls[0]
    assert claim[1:] == (NOW, 10, "worker-a", dt.timedelta(seconds=app.settings.lease_seconds))
    assert outbox.calls[1] == ("stop", [1, 2], True)  # consent checked before rendering
    assert outbox.calls[4] == ("stop", [1, 2], False)  # checked again right before leaving
    [batch] = app.channels["email"].batches
    assert [m.message_id for m in batch] == [1, 2]
    assert all(m.campaign == VOICE and m.facts is None for m in batch)  # the campaign's voice comes on the message
    assert batch[0].rfc_message_id == "<declic.1@declic.test>" and batch[0].meta["business_id"] == 101
    assert outbox.recorded["handed_over"] == {1, 2} and outbox.recorded["owner"] == "worker-a"
    assert outbox.recorded["refused"] == [] and outbox.recorded["failing"] == set()
    assert outbox.recorded["pause"] == PausePolicy(app.settings.pause_error_rate, app.settings.pause_min_sample,
                                                   dt.timedelta(minutes=app.settings.pause_window_minutes), app.zone)
    assert counts["sent"] == 2


def test_what_must_not_leave_is_stopped_before_and_right_before_leaving(app: App) -> None:
    outbox = RecordingOutbox([row(1), row(2, campaign_id=2), row(3, campaign_id=3)], blocked={1: "opted_out"},
                             late={2: "campaign_paused"})
    counts = dispatch_batch(app, now=NOW, outbox=outbox)
    assert ("voices", [2, 3]) in outbox.calls  # nothing read for a message already stopped
    assert [m.message_id for m in app.channels["email"].batches[0]] == [3]
    assert counts["cancelled_opted_out"] == 1 and counts["cancelled_campaign_paused"] == 1
    assert set(outbox.recorded["results"]) == {3}


def test_the_facts_gathered_for_a_channel_reach_its_messages(app: App) -> None:
    outbox = RecordingOutbox([row(1), row(2)], facts={2: "ce que le magasin sait"})
    dispatch_batch(app, now=NOW, outbox=outbox)
    assert ("facts", {"email": [1, 2]}) in outbox.calls
    assert [m.facts for m in app.channels["email"].batches[0]] == [None, "ce que le magasin sait"]


def test_answers_reach_the_record_with_refused_addresses_failing_campaigns_and_lost_leases(app: App) -> None:
    app.channels["email"] = Channel({2: SendResult(2, Outcome.PERMANENT, "550 5.1.1", address_refused=True)})
    outbox = RecordingOutbox([row(1), row(2, campaign_id=7), row(3, campaign_id=8, template="casse"), row(4)],
                             lost={4})
    counts = dispatch_batch(app, now=NOW, outbox=outbox)
    results = outbox.recorded["results"]
    assert results[3].outcome is Outcome.PERMANENT and "rendu impossible" in results[3].detail
    assert results[4].outcome is Outcome.ABANDONED and outbox.recorded["handed_over"] == {1, 2}
    assert outbox.recorded["refused"] == ["patron2@exemple.fr"]
    assert outbox.recorded["failing"] == {7, 8}  # a template that cannot render counts against its campaign
    assert counts["paused_campaigns"] == 2
    assert outbox.recorded["retry_base"] == dt.timedelta(seconds=app.settings.retry_base_seconds)
