"""The monitor agents: ``scores`` and ``labels`` -> drift, fairness, performance, policy.

Two faust agents in the worker app feed one :class:`streams.monitor.runner.Monitor`, whose work
(Redis joins, per-feature tests, bootstrap intervals) runs in a single dedicated thread: the event
loop stays free, and the monitor's state is only ever touched by that thread. The ``labels``
agent shares its topic with the learner (faust hands each message to both agents); the
``labels`` topic has one partition, so the worker owning it sees every label. ``scores`` has
several partitions: with more than one worker, each monitors the windows of its partitions.
A record that fails is dead-lettered; a batch that fails as a whole (Redis down, a bug) is
logged and skipped, so the agents never die. Control requests are kept in Redis until the
broker acknowledges their records (``Monitor.sent``); a monitor that starts sends those
left by the one before (``Monitor.unsent``, see :mod:`streams.monitor.persist`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from riverwatch.core.redis import redis_client
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record, from_events, raw_topic
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

    def run(method: str, records: list[Record]) -> list[Out]:
        if "m" not in state:
            state["m"] = Monitor(ctx, redis_client(ctx.redis_config), ctx.worker)
            unsent.extend(state["m"].unsent())
        handler: Callable[[list[Record]], list[Out]] = getattr(state["m"], method)
        outs = unsent + handler(records)
        unsent.clear()
        return outs

    async def handle(method: str, events: list[Any]) -> None:
        try:
            outs = await asyncio.get_running_loop().run_in_executor(
                thread, run, method, from_events(events)
            )
        except Exception:  # never let one batch stop the monitor
            log.exception("monitor %s: a batch of %d records failed", method, len(events))
            return
        acks = [await app.producer.send(o.topic, o.key, o.value, None, None, None) for o in outs]
        controls = [o for o in outs if o.topic == t_control]
        if not controls:
            return
        try:  # the broker has them: out of the outbox (else sent again after a restart)
            await asyncio.gather(*acks)
            await asyncio.get_running_loop().run_in_executor(thread, state["m"].sent, controls)
        except Exception:
            log.exception("monitor: %d control requests not acknowledged yet", len(controls))

    @app.agent(raw_topic(app, names.topic("scores")), name="monitor-scores")
    async def monitor_scores(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.5):
            await handle("process_scores", events)

    @app.agent(raw_topic(app, names.topic("labels")), name="monitor-labels")
    async def monitor_labels(stream: Any) -> None:
        async for events in stream.take_events(1000, within=0.5):
            await handle("process_labels", events)
