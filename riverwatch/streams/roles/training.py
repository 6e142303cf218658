"""The ``training`` role: the ``control`` agent and the retrain schedule (streams/trainer.py).

Training is CPU-heavy, so it runs in its own thread while the agent keeps consuming; one
retrain runs at a time. A retrain a client requests meanwhile fails at once, saying which one
is running (the client may ask again). The monitor does not ask again, so its request waits
and runs next; of several waiting, the newest runs and the older ones are answered as
superseded (the newest trains on the same labels or newer ones).

Nothing accepted is lost: a retrain is recorded as pending in Redis (streams/control_pending.py)
before the agent moves past its record, and forgotten only once the broker has acknowledged
its outcome; the worker that owns ``control`` next (this one after a restart, or another
after a rebalance) resumes the pending ones: a running one starts again from the start. A
request whose ``request_id`` is pending or already answered is a duplicate: it is dropped,
and nothing is published for it (its outcome is, or will be, published once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted

from riverwatch.core.metrics import EVENTS
from riverwatch.core.outputs import Control
from riverwatch.streams.control_pending import PENDING_MAX, Pending
from riverwatch.streams.records import Out, Record, dead_letter, raw_topic
from riverwatch.streams.runtime import OwnerThread, WorkerContext, produce
from riverwatch.streams.trainer import SCHEDULE_CHECK_S, Trainer

log = logging.getLogger(__name__)
RESUME_CHECK_S = 1.0  # how often a worker looks whether it has just come to own ``control``


class _Retrains:
    """One retrain at a time, the monitor's newest request waiting, all of it kept in Redis."""

    def __init__(self, app: faust.App, trainer: Trainer, pending: Pending):
        self.app, self.trainer, self.pending = app, trainer, pending
        self.thread = OwnerThread("trainer")
        self.busy: dict[str, asyncio.Task[None]] = {}  # request_id -> the retrain running now
        self.waiting: list[Control] = []  # the monitor's newest request that came while busy

    def holds(self, request_id: str) -> bool:
        return request_id in self.busy or any(w.request_id == request_id for w in self.waiting)

    async def publish(self, outs: list[Out], answered: Sequence[Control]) -> None:
        """Send the outcomes, wait for the broker's acknowledgement, then mark them answered."""
        for o in outs:
            await self.app.producer.send_and_wait(o.topic, o.key, o.value, None, None, None)
        await asyncio.to_thread(self.pending.answered, [r.request_id for r in answered])

    async def start(self, req: Control) -> None:
        await asyncio.to_thread(self.pending.put, req, "running")
        self.busy[req.request_id] = asyncio.create_task(self.run(req))

    async def run(self, req: Control) -> None:
        try:
            outs = await self.thread.run(self.trainer.handle, req)
        except Exception as exc:  # a bug or Redis down: answer, never leave a request hanging
            log.exception("retrain %s crashed", req.request_id)
            outs = self.trainer.outcome(req, False, f"retrain crashed: {exc!r}", {})
        try:
            await self.publish(outs, [req])
        except Exception:  # still pending in Redis: resumed by the next owner of ``control``
            log.exception("the outcome of retrain %s was not published", req.request_id)
        finally:
            self.busy.pop(req.request_id, None)
        if self.waiting and not self.busy:
            nxt = self.waiting.pop()
            try:
                await self.start(nxt)
            except Exception:  # Redis down: still pending there, resumed by the next owner
                log.exception("retrain %s could not start", nxt.request_id)

    async def wait(self, req: Control) -> None:
        """``req`` (the monitor's) waits for the running retrain; older waiting ones go."""
        await asyncio.to_thread(self.pending.put, req, "waiting")
        old, self.waiting[:] = list(self.waiting), [req]
        await self.publish(_supersede(self.trainer, old, req), old)

    async def accept(self, req: Control) -> None:
        """A retrain request from ``control``: run, wait or fail at once."""
        if self.busy and req.details.get("source") == "monitor":
            await self.wait(req)
        elif self.busy:
            running = next(iter(self.busy))
            msg = f"a retrain is already running (request {running}); try later"
            await self.publish(self.trainer.outcome(req, False, msg, {"running": running}), [req])
        else:
            await self.start(req)

    async def resume(self) -> None:
        """Take up the pending requests left by an earlier owner of ``control``."""
        entries, dropped = await asyncio.to_thread(self.pending.load)
        msg = f"dropped when resumed: more than {PENDING_MAX} control requests were pending"
        await self.publish(
            [o for d in dropped for o in self.trainer.outcome(d, False, msg, {})], dropped
        )
        for req, state in entries:
            if self.holds(req.request_id):
                continue
            log.info("resuming %s retrain %s", state, req.request_id)
            if self.busy:
                self.waiting.append(req)  # the last (the newest) runs first
                await asyncio.to_thread(self.pending.put, req, "waiting")
            else:
                await self.start(req)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the ``control`` agent, the resume timer (and the schedule's, if any) to ``app``."""
    trainer = Trainer(ctx, ctx.redis, ctx.worker)
    pending = Pending(ctx.redis, ctx.names)
    retrains = _Retrains(app, trainer, pending)
    t_dead = ctx.names.topic("deadletter")
    t_control = ctx.names.topic("control")
    owner = {"resumed": False}

    if ctx.worker_config.retrain_every_days > 0:
        _schedule(app, retrains)

    @app.timer(interval=RESUME_CHECK_S)
    async def resume() -> None:
        try:
            owns = any(tp.topic == t_control for tp in app.consumer.assignment())
        except ConsumerNotStarted:
            owns = False
        if owns and not owner["resumed"]:
            try:
                await retrains.resume()
            except Exception:  # Redis or the broker down: try again next tick
                log.exception("resuming the pending control requests failed")
                return
        owner["resumed"] = owns

    async def handle(req: Control) -> None:
        if retrains.holds(req.request_id) or await asyncio.to_thread(pending.known, req.request_id):
            EVENTS.labels(topic="control", outcome="duplicate").inc()
            log.info("%s %s already pending or answered: ignored", req.action, req.request_id)
        elif req.action == "retrain":
            await retrains.accept(req)
        else:
            await retrains.publish(await asyncio.to_thread(trainer.handle, req), [req])

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
                    await handle(req)
            except Exception as exc:  # never let one record stop the agent
                log.exception("control record at offset %s failed", m.offset)
                await produce(app, [dead_letter(t_dead, rec, repr(exc), ctx.worker)])


def _schedule(app: faust.App, retrains: _Retrains) -> None:
    """Add the retrain schedule's timer: a due period starts a retrain when none runs."""

    @app.timer(interval=SCHEDULE_CHECK_S)
    async def scheduled() -> None:
        if retrains.busy:  # one retrain at a time; the period stays due until claimed
            return
        try:
            req = await asyncio.to_thread(retrains.trainer.scheduled)
            if req is not None:
                await retrains.start(req)
        except Exception:  # Redis or the store unreadable: try again next tick
            log.exception("checking the retrain schedule failed")


def _supersede(trainer: Trainer, waiting: list[Control], newer: Control) -> list[Out]:
    """The answers to the waiting requests ``newer`` replaces."""
    msg = f"superseded by the monitor's newer request {newer.request_id}"
    return [o for old in waiting for o in trainer.outcome(old, False, msg, {})]
