"""A warm runner: one deployment's flow runs executed inside the long-lived `declic serve` process.

Prefect's runner starts every flow run in a fresh Python process, which here costs about 2 s of imports
before the flow begins. Planning is started by partner events and should begin within about 2 s, so
`declic serve` keeps the plan flow loaded and runs its flow runs itself, in a thread, one at a time.

The runs stay ordinary Prefect flow runs: created by the deployment's schedule or event trigger, claimed
by proposing PENDING (the server refuses a second claimer and enforces the deployment's concurrency
limit), executed by Prefect's flow engine, visible in the UI and in `declic status`. A claimed run is
labelled with this host and process id (its `infrastructure_pid`), so that a later `declic serve` marks
CRASHED only the runs a dead process of its own left behind. A warm run is not stopped by a cancellation
from the UI (a plan run lasts seconds); it is recorded CANCELLED when it ends.

The runner wakes on the server's `prefect.flow-run.Scheduled` event for the deployment (a websocket
subscription), and polls every few seconds besides, for cron runs and any event missed while reconnecting:
polling alone every 0.2 s cost the local Prefect server about 7 % of a core while idle.

Runs that are due together and ask for the same work are folded into the oldest: a plan run handles every
event committed before it starts, and each folded run was created after its event had been committed. Without
folding, a burst of partner batches would queue one run per batch behind the concurrency limit. Parameters
that only label a run (the plan's `trigger_event`) do not make the work different; any other parameter does,
so an operator's run with its own `limit` or `now` is never folded into a scheduled one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import os
import socket
import threading
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import Cancelled, Crashed, Pending
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs
from prefect.utilities.engine import propose_state_sync

logger = logging.getLogger("declic.warm")


class WarmRunner:
    """Polls the Prefect API for due runs of one deployment and runs them in this process."""
    def __init__(self, deployment_id: UUID, flow: Any, *, poll_seconds: float = 5.0,
                 labels: tuple[str, ...] = ("trigger_event",)) -> None:
        self.deployment_id, self.flow, self.poll_seconds = deployment_id, flow, poll_seconds
        self.labels = labels  # parameters that name a run without changing its work
        self.polls = 0
        self.listening = threading.Event()  # set while the event subscription is open
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._events_task: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None

    def start(self) -> WarmRunner:

        with get_client(sync_client=True) as client:
            self.recover(client)
        # Each thread runs in a copy of this context, so it sees the same Prefect settings (API URL) as the
        # caller rather than the process-wide defaults.
        self._listener = threading.Thread(target=contextvars.copy_context().run, args=(self._listen,),
                                          daemon=True, name=f"declic-warm-{self.flow.name}-events")
        self._listener.start()
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._loop,), daemon=True,
                                        name=f"declic-warm-{self.flow.name}")
        self._thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop polling; a run in progress is given `timeout` seconds to finish."""
        self._stop.set()
        self._wake.set()
        if self._events_task is not None:
            loop, task = self._events_task
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.join(5)

    def _loop(self) -> None:

        woken = False
        with get_client(sync_client=True) as client:
            while not self._stop.is_set():
                self._wake.clear()  # before looking: an event during the look wakes the next one
                ran = False
                try:
                    # Woken by an event, look a few times: the run may become due a moment after it.
                    for _attempt in range(5 if woken else 1):
                        self.polls += 1
                        ran = bool(self.run_due(client))
                        if ran or self._stop.wait(0.1):
                            break
                except Exception:  # the API restarting, a network blip: log, keep polling
                    logger.exception("warm runner for %s: poll failed", self.flow.name)
                    self._stop.wait(5)
                # After a run, look again at once: more may have become due meanwhile.
                woken = False if ran else self._wake.wait(self.poll_seconds)

    def _listen(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self._subscribe())

    async def _subscribe(self) -> None:
        """Set the wake-up flag on every `prefect.flow-run.Scheduled` event of this deployment."""
        wanted = EventFilter(event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
                             related=EventRelatedFilter(id=[f"prefect.deployment.{self.deployment_id}"]))
        self._events_task = (asyncio.get_running_loop(), asyncio.current_task())
        while not self._stop.is_set():
            try:
                async with get_events_subscriber(filter=wanted, reconnect_on_clean_close=True) as events:
                    self.listening.set()
                    async for _event in events:
                        self._wake.set()
            except Exception:  # the server restarting: the poll covers the gap, subscribe again
                self.listening.clear()
                logger.warning("warm runner for %s: event subscription lost, retrying", self.flow.name)
                await asyncio.sleep(5)

    def recover(self, client) -> int:
        """End the runs a dead warm runner of this host left claimed, running or cancelling; how many.

        Such a run has no one left to finish it, and it would hold the deployment's concurrency slot until
        its lease expires (five minutes). Runs of workers or of other hosts are left alone.
        """
        unfinished = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]))),
        )
        orphans = [run for run in unfinished if _left_by_a_dead_runner(run.infrastructure_pid)]
        for run in orphans:
            state = (Cancelled(message="Cancelled while declic serve was stopped.")
                     if run.state_type == StateType.CANCELLING
                     else Crashed(message="declic serve stopped during this run."))
            client.set_flow_run_state(run.id, state, force=True)
        return len(orphans)

    def run_due(self, client) -> int:
        """Run the oldest due flow run, fold the same work into it; the number of runs executed (0 or 1)."""
        # Prefect's own clock, not the App's: the server schedules runs on the wall clock, and a fixed App clock
        # would make them never due (or all due at once).
        due = client.get_scheduled_flow_runs_for_deployments(
            [self.deployment_id], scheduled_before=dt.datetime.now(dt.UTC)
        )
        due.sort(key=lambda run: run.next_scheduled_start_time or run.expected_start_time or run.created)
        for position, run in enumerate(due):
            if not self._claim(client, run):
                continue  # another runner has it, or the concurrency limit holds it back
            client.update_flow_run(run.id, infrastructure_pid=_RUNNER_PID)
            for later in due[position + 1:]:
                if self._work(later) == self._work(run):
                    self._fold(client, later, into=run)
            self._execute(client, run)
            return 1
        return 0

    def _work(self, run) -> dict[str, Any]:
        # The flow's defaults filled in, as the engine does: `{}` and `{"limit": None}` are the same work.

        args, kwargs = parameters_to_args_kwargs(self.flow.fn, run.parameters or {})
        return {k: v for k, v in get_call_parameters(self.flow.fn, args, kwargs).items() if k not in self.labels}

    @staticmethod
    def _claim(client, run) -> bool:

        try:
            return propose_state_sync(client, Pending(), flow_run_id=run.id).is_pending()
        except Abort:
            return False

    @staticmethod
    def _fold(client, run, *, into) -> None:

        message = f"Folded into flow run {into.name}, which handles every event committed before it."
        try:
            propose_state_sync(client, Cancelled(message=message), flow_run_id=run.id)
        except Abort:
            pass  # already taken or finished elsewhere

    def _execute(self, client, run) -> None:

        logger.info("warm runner: flow run %s (%s) starts in this process", run.name, run.id)
        # Parameters come from the flow run, with the flow's defaults filled in, as in a runner's child
        # process. No heartbeat thread: a sync flow joins it at its end, which held the next run back by
        # up to a second. Without heartbeats, a run whose process is killed stays RUNNING until the next
        # `declic serve` start (recover).
        try:
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                state = run_flow(self.flow, flow_run=run, return_type="state")
        except BaseException as exc:  # the engine itself failed (API lost, lease lost): end the run, go on
            logger.exception("warm runner: flow run %s failed outside the flow", run.name)
            with contextlib.suppress(Exception):
                if not client.read_flow_run(run.id).state.is_final():
                    client.set_flow_run_state(run.id, Crashed(message=f"The warm runner failed: {exc!r}"),
                                              force=True)
            return
        logger.info("warm runner: flow run %s ended %s", run.name, getattr(state, "name", state))


# A claimed run's `infrastructure_pid`: which process on which host runs it.
_RUNNER_PID = f"declic-warm:{socket.gethostname()}:{os.getpid()}"


def _left_by_a_dead_runner(infrastructure_pid: str | None) -> bool:
    """True for a run labelled by a warm runner of this host whose process no longer exists."""
    kind, _, rest = (infrastructure_pid or "").partition(":")
    host, _, pid = rest.rpartition(":")
    if kind != "declic-warm" or host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
