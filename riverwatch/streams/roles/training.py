"""The ``training`` role: the ``control`` agent and the retrain schedule (streams/trainer.py).

Training is CPU-heavy, so it runs in its own thread while the agent keeps consuming; one
retrain runs at a time. A retrain a client requests meanwhile fails at once, saying which one
is running (the client may ask again). The monitor does not ask again, so its request waits
and runs next; of several waiting, the newest runs and the older ones are answered as
superseded (the newest trains on the same labels or newer ones).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import faust

from riverwatch.core.metrics import EVENTS
from riverwatch.core.outputs import Control
from riverwatch.streams.records import Out, Record, dead_letter, raw_topic
from riverwatch.streams.runtime import OwnerThread, WorkerContext, produce
from riverwatch.streams.trainer import SCHEDULE_CHECK_S, Trainer

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the ``control`` agent (and the schedule's timer, if any) to ``app``."""
    worker = ctx.worker
    trainer = Trainer(ctx, ctx.redis, worker)
    t_dead = ctx.names.topic("deadletter")
    training = OwnerThread("trainer")
    busy: dict[str, asyncio.Task[None]] = {}  # request_id -> the retrain running now
    waiting: list[Control] = []  # the monitor's newest request that came while busy

    async def run(req: Control) -> None:
        try:
            outs = await training.run(trainer.handle, req)
        except Exception as exc:  # a bug or Redis down: answer, never leave a request hanging
            log.exception("retrain %s crashed", req.request_id)
            outs = trainer.outcome(req, False, f"retrain crashed: {exc!r}", {})
        finally:
            busy.pop(req.request_id, None)
        await produce(app, outs)
        if waiting and not busy:
            nxt = waiting.pop()
            busy[nxt.request_id] = asyncio.create_task(run(nxt))

    if ctx.worker_config.retrain_every_days > 0:
        _schedule(app, trainer, busy, run)

    @app.agent(raw_topic(app, ctx.names.topic("control")))
    async def control(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            rec = Record(m.topic, m.partition, m.offset, m.key, m.value)
            try:
                req = trainer.parse(rec)
                if isinstance(req, Out):
                    EVENTS.labels(topic="control", outcome="deadletter").inc()
                    await produce(app, [req])
                elif req is not None and req.action == "retrain":
                    if busy and req.details.get("source") == "monitor":
                        await produce(app, _supersede(trainer, waiting, req))
                        waiting[:] = [req]
                    elif busy:
                        running = next(iter(busy))
                        msg = f"a retrain is already running (request {running}); try later"
                        await produce(app, trainer.outcome(req, False, msg, {"running": running}))
                    else:
                        busy[req.request_id] = asyncio.create_task(run(req))
                elif req is not None:
                    await produce(app, await asyncio.to_thread(trainer.handle, req))
            except Exception as exc:  # never let one record stop the agent
                log.exception("control record at offset %s failed", m.offset)
                await produce(app, [dead_letter(t_dead, rec, repr(exc), worker)])


def _schedule(
    app: faust.App,
    trainer: Trainer,
    busy: dict[str, asyncio.Task[None]],
    run: Callable[[Control], Coroutine[Any, Any, None]],
) -> None:
    """Add the retrain schedule's timer: a due period starts a retrain when none runs."""

    @app.timer(interval=SCHEDULE_CHECK_S)
    async def scheduled() -> None:
        if busy:  # one retrain at a time; the period stays due until claimed
            return
        try:
            req = await asyncio.to_thread(trainer.scheduled)
        except Exception:  # Redis or the store unreadable: try again next tick
            log.exception("checking the retrain schedule failed")
            return
        if req is not None:
            busy[req.request_id] = asyncio.create_task(run(req))


def _supersede(trainer: Trainer, waiting: list[Control], newer: Control) -> list[Out]:
    """The answers to the waiting requests ``newer`` replaces."""
    msg = f"superseded by the monitor's newer request {newer.request_id}"
    return [o for old in waiting for o in trainer.outcome(old, False, msg, {})]
