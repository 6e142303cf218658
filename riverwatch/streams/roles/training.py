"""The ``training`` role: the ``control`` agent, the resume timer and the retrain schedule,
driving :class:`riverwatch.streams.retrains.Retrains` (one retrain at a time, every request
pending in Redis until answered, each carried out under its lease; streams/trainer.py carries
out one request).

The worker that owns ``control`` (this one after a restart, or another after a rebalance)
resumes the pending requests when it comes to own it and every :data:`RESCAN_S` after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from mode import Service

from riverwatch.core.metrics import EVENTS
from riverwatch.streams.records import Out, Record, dead_letter, raw_topic
from riverwatch.streams.retrains import Retrains
from riverwatch.streams.runtime import WorkerContext, produce
from riverwatch.streams.trainer import SCHEDULE_CHECK_S, Trainer

log = logging.getLogger(__name__)
RESUME_CHECK_S = 1.0  # how often a worker looks whether it has just come to own ``control``
RESCAN_S = 10.0  # how often the owner of ``control`` looks again for requests left to it


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the ``control`` agent, the resume timer (and the schedule's, if any) to ``app``."""
    trainer = Trainer(ctx, ctx.redis, ctx.worker)

    async def send(o: Out) -> None:
        await app.producer.send_and_wait(o.topic, o.key, o.value, None, None, None)

    # stopping from the moment the app begins to (its consumer and producer stop first)
    retrains = Retrains(send, trainer, trainer.pending, stopping=lambda: app.should_stop)
    t_dead = ctx.names.topic("deadletter")
    t_control = ctx.names.topic("control")
    owner = {"resumed": False, "at": 0.0}

    if ctx.worker_config.retrain_every_days > 0:
        _schedule(app, retrains)

    @app.service
    class LeaseService(Service):
        async def on_stop(self) -> None:
            await retrains.stop()

    @app.timer(interval=RESUME_CHECK_S)
    async def resume() -> None:
        try:
            owns = any(tp.topic == t_control for tp in app.consumer.assignment())
        except ConsumerNotStarted:
            owns = False
        now = time.monotonic()
        if owns and (not owner["resumed"] or now - owner["at"] >= RESCAN_S):
            try:
                await retrains.resume()
            except Exception:  # Redis or the broker down: try again next tick
                log.exception("resuming the pending control requests failed")
                return
            owner["at"] = now
        owner["resumed"] = owns

    @app.agent(raw_topic(app, t_control))
    async def control(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            rec = Record(m.topic, m.partition, m.offset, m.key, m.value)
            try:
                req = trainer.parse(rec)
                if isinstance(req, Out):
                    EVENTS.labels(topic="control", outcome="deadletter").inc()
                    await produce(app, [req])
                elif req is not None:
                    await retrains.receive(req, m.value or b"")
            except Exception as exc:  # never let one record stop the agent
                log.exception("control record at offset %s failed", m.offset)
                await produce(app, [dead_letter(t_dead, rec, repr(exc), ctx.worker)])


def _schedule(app: faust.App, retrains: Retrains) -> None:
    """Add the retrain schedule's timer: a due period starts a retrain when none runs."""

    @app.timer(interval=SCHEDULE_CHECK_S)
    async def scheduled() -> None:
        if retrains.busy or retrains.stopping:  # one at a time; the period stays due
            return
        try:
            due = await asyncio.to_thread(retrains.trainer.scheduled)
            if due is not None:
                await retrains.start(*due)
        except Exception:  # Redis or the store unreadable: try again next tick
            log.exception("checking the retrain schedule failed")
