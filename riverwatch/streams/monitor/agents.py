"""The monitor agents: ``scores`` and ``labels`` -> drift, fairness, performance, policy.

Two faust agents in the worker app feed one :class:`streams.monitor.runner.Monitor`, whose work
(Redis joins, per-feature tests, bootstrap intervals) runs in a single dedicated thread: the event
loop stays free, and the monitor's state is only ever touched by that thread. The ``labels``
agent shares its topic with the learner (faust hands each message to both agents); the
``labels`` topic has one partition, so the worker owning it sees every label. ``scores`` has
several partitions: with more than one worker, each monitors the windows of its partitions.
A record that fails validation is dead-lettered; one the monitor raises on is found by
splitting its batch and dead-lettered with the error and its origin, counted once as a
data-quality reject (``(record)|invalid|handler_error``), while the rest of the batch is
monitored; an outage (Redis, Kafka) is retried with a backoff (streams/guard.py), so the
agents never die and never drop a batch. Control requests are kept in Redis until the
broker acknowledges their records (``Monitor.sent``); a monitor that starts sends those
left by the one before (``Monitor.unsent``, see :mod:`streams.monitor.persist`). A clean stop
snapshots the windows, reference and detectors (``Monitor.checkpoint``,
:mod:`streams.monitor.snapshot`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from mode import Service

from riverwatch.core.redis import redis_client
from riverwatch.streams.guard import Guard
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record, raw_topic
from riverwatch.streams.rejects import RejectCounter
from riverwatch.streams.runtime import WorkerContext

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the monitor's ``scores`` and ``labels`` agents to ``app`` (the ``monitoring`` role)."""
    names = ctx.names
    t_control = names.topic("control")
    _ = ctx.drift_columns  # a bad RIVERWATCH_MONITOR_DRIFT_EXCLUDE fails the worker at start
    thread = ThreadPoolExecutor(1, thread_name_prefix="monitor")
    state: dict[str, Monitor] = {}  # built in the monitor thread on first use

    unsent: list[Out] = []  # decided before a restart, never acknowledged: sent first
    t_dead = names.topic("deadletter")
    guards = {
        "process_scores": Guard("monitor-scores", "scores", t_dead, ctx.worker),
        "process_labels": Guard("monitor-labels", "labels", t_dead, ctx.worker),
    }
    counters: dict[str, RejectCounter] = {}

    def run(method: str, records: list[Record]) -> list[Out]:
        if "m" not in state:
            m = state["m"] = Monitor(ctx, redis_client(ctx.redis_config), ctx.worker)
            unsent.extend(m.unsent())
            # a score stands for its transaction (streams.rejects)
            counters["process_scores"] = RejectCounter(m.r, names, "transactions", False)
            counters["process_labels"] = RejectCounter(m.r, names, "labels", True)
        handler: Callable[[list[Record]], list[Out]] = getattr(state["m"], method)
        outs = unsent + guards[method].isolated(handler, records, counters[method].count_failed)
        unsent.clear()
        return outs

    async def handle(method: str, events: list[Any]) -> None:
        def work(records: list[Record]) -> Awaitable[list[Out]]:
            return asyncio.get_running_loop().run_in_executor(thread, run, method, records)

        outs = await guards[method].run(app, events, work)  # acknowledged by the broker
        controls = [o for o in outs if o.topic == t_control]
        if not controls:
            return
        try:  # the broker has them: out of the outbox (else sent again after a restart)
            await asyncio.get_running_loop().run_in_executor(thread, state["m"].sent, controls)
        except Exception:
            log.exception("monitor: %d control requests not acknowledged yet", len(controls))

    _register_snapshots(app, ctx, thread, state)

    @app.agent(raw_topic(app, names.topic("scores")), name="monitor-scores")
    async def monitor_scores(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.5):
            await handle("process_scores", events)

    @app.agent(raw_topic(app, names.topic("labels")), name="monitor-labels")
    async def monitor_labels(stream: Any) -> None:
        async for events in stream.take_events(1000, within=0.5):
            await handle("process_labels", events)


def _register_snapshots(
    app: faust.App, ctx: WorkerContext, thread: ThreadPoolExecutor, state: dict[str, Monitor]
) -> None:
    """Snapshots of the monitor (streams.monitor.snapshot) in its thread: a timer, for when
    one is due after the last batches of a lull, and a last one at a clean stop."""

    async def checkpoint(final: bool) -> None:
        if "m" in state:
            await asyncio.get_running_loop().run_in_executor(thread, state["m"].checkpoint, final)

    @app.timer(interval=ctx.worker_config.monitor_snapshot_s)
    async def monitor_snapshot() -> None:
        await checkpoint(False)

    @app.service
    class MonitorStop(Service):
        async def on_stop(self) -> None:
            await checkpoint(True)
