"""The trainer's control requests carried out one retrain at a time (streams/trainer.py does
each one): :class:`Retrains`, driven by the ``control`` agent, the resume timer and the
schedule that streams/roles/training.py wires.

Training is CPU-heavy, so it runs in its own thread while the agent keeps consuming; one
retrain runs at a time. A retrain a client requests meanwhile fails at once, saying which one
is running (the client may ask again). The monitor does not ask again, so its request waits
and runs next; of several waiting, the newest runs and the older ones are answered as
superseded (the newest trains on the same labels or newer ones).

Nothing accepted is lost: every request (retrain, promote, rollback, reset) is recorded as
pending in Redis (streams/control_pending.py) before the agent moves past its record, and
forgotten only once the broker has acknowledged its outcome; the worker that owns ``control``
(this one after a restart, or another after a rebalance) resumes the pending ones
(:meth:`Retrains.resume`, streams/roles/training.py says when): a running retrain starts again
from the start, a promote or rollback already applied is answered, not applied again. Each is
carried out only under its lease (streams/control_lease.py): of two workers that both think they own
``control``, one carries a request out, and one whose lease ran out changes and publishes
nothing. A request whose ``request_id`` is pending is a duplicate and is dropped; one already
answered is answered again with its stored outcome and not carried out again.

A worker that is stopping starts nothing (:meth:`Retrains.stop`): a retrain it would start
would outlast the stop's grace period and its outcome would be lost. The waiting retrain, and
any request that comes, is due or is left to resume meanwhile, stays pending with its lease
free for the next owner of ``control``; a retrain that comes is neither refused as "already
running" nor supersedes the waiting one (its answer could not be sent once the producer stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from riverwatch.core.metrics import EVENTS
from riverwatch.core.outputs import Control
from riverwatch.streams.control_lease import RENEW_S, Lease, LeaseLost
from riverwatch.streams.control_pending import PENDING_MAX, Pending
from riverwatch.streams.records import Out
from riverwatch.streams.runtime import OwnerThread
from riverwatch.streams.trainer import Trainer

log = logging.getLogger(__name__)
Send = Callable[[Out], Awaitable[None]]  # sends one output, returns once the broker acked it


class Retrains:
    """One retrain at a time, the monitor's newest request waiting, all of it kept in Redis."""

    def __init__(
        self,
        send: Send,
        trainer: Trainer,
        pending: Pending,
        stopping: Callable[[], bool] = lambda: False,
    ):
        self.send, self.trainer, self.pending = send, trainer, pending
        self.worker_stops = stopping  # the worker began to stop (before :meth:`stop` is called)
        self.stopped = False
        self.thread = OwnerThread("trainer")
        self.t_control = trainer.names.topic("control")
        self.busy: dict[str, asyncio.Task[None]] = {}  # request_id -> the retrain running now
        self.waiting: list[Control] = []  # the monitor's newest request that came while busy
        self.quick: set[str] = set()  # promotes, rollbacks and resets being carried out
        self.held: dict[str, Lease] = {}  # request_id -> its lease, held by this worker

    @property
    def stopping(self) -> bool:
        """The worker is stopping: no request is started any more."""
        return self.stopped or self.worker_stops()

    def holds(self, request_id: str) -> bool:
        return (
            request_id in self.busy
            or request_id in self.quick
            or any(w.request_id == request_id for w in self.waiting)
        )

    async def publish(self, outs: list[Out], answered: Sequence[Control]) -> None:
        """Send the outcomes, wait for the broker's acknowledgement, then mark them answered
        (their ``control`` outcomes stored for a redelivered request)."""
        for o in outs:
            await self.send(o)
        stored = {o.key.decode(): o.value for o in outs if o.topic == self.t_control and o.key}
        ids = [r.request_id for r in answered]
        await asyncio.to_thread(self.pending.answered, ids, stored)

    async def receive(self, req: Control, raw: bytes) -> None:
        """A request (or the learner's answer to a reset, ``raw`` its record) from ``control``."""
        if req.status != "requested":  # stored for a redelivered reset
            await asyncio.to_thread(self.pending.remember, req.request_id, raw)
            return
        state, outcome = await asyncio.to_thread(self.pending.lookup, req.request_id)
        if self.holds(req.request_id) or state != "new":
            EVENTS.labels(topic="control", outcome="duplicate").inc()
            log.info("%s %s already %s: not carried out again", req.action, req.request_id, state)
            if outcome is not None:  # answered: its sender may have missed the outcome
                await self.publish([Out(self.t_control, req.request_id.encode(), outcome)], [])
        elif req.action == "retrain":
            await self.accept(req)
        else:
            await self.change(req)

    async def lease(self, req: Control) -> Lease | None:
        """``req`` recorded as pending and running, and its lease, taken; None if ``req`` was
        answered meanwhile, another worker holds the lease or this worker is stopping (then
        ``req`` is left pending, its lease free, for the next owner of ``control``)."""
        if self.stopping:
            await self.leave(req)
            return None
        if not await asyncio.to_thread(self.pending.put, req, "running"):
            return None  # answered already
        lease = self.trainer.lease(req.request_id)
        if not await asyncio.to_thread(lease.acquire):
            # pending: its holder answers it, or the owner of ``control`` resumes it
            log.info("%s %s is carried out elsewhere (leased)", req.action, req.request_id)
            return None
        if not await asyncio.to_thread(self.pending.is_pending, req.request_id):
            await asyncio.to_thread(lease.release)  # answered between the two
            return None
        return await self.keep(req, lease)

    async def keep(self, req: Control, lease: Lease) -> Lease | None:
        """``lease`` (taken) kept for ``req``, or let go if the worker began to stop meanwhile
        (None: ``req`` is left pending). Kept without awaiting after the check, so a stop
        either comes before it or finds the lease kept (and lets it go, :meth:`stop`)."""
        if self.stopping:
            await asyncio.to_thread(lease.release)
            await self.leave(req)
            return None
        self.held[req.request_id] = lease
        return lease

    async def leave(self, req: Control) -> None:
        """Leave ``req`` pending (as it is, or ``waiting`` if new) to the next owner of
        ``control``, not started: the worker is stopping, and would neither finish long work
        within its grace period nor publish the outcome."""
        if not await asyncio.to_thread(self.pending.is_pending, req.request_id):
            await asyncio.to_thread(self.pending.put, req, "waiting")
        log.info("%s %s left pending: the worker is stopping", req.action, req.request_id)

    async def start(self, req: Control, lease: Lease | None = None) -> None:
        """Run the retrain ``req`` under ``lease`` (taken here unless given), unless the worker
        is stopping (then it stays pending)."""
        kept = await (self.lease(req) if lease is None else self.keep(req, lease))
        if kept is not None:
            self.busy[req.request_id] = asyncio.create_task(self.run(req, kept))

    async def run(self, req: Control, lease: Lease) -> None:
        renew = asyncio.create_task(_renew(lease))
        try:
            outs: list[Out] | None = await self.thread.run(self.trainer.handle, req, lease)
        except LeaseLost:
            outs = None
        except Exception as exc:  # a bug or Redis down: answer, never leave a request hanging
            log.exception("retrain %s crashed", req.request_id)
            outs = self.trainer.outcome(req, False, f"retrain crashed: {exc!r}", {})
        finally:
            renew.cancel()
        try:
            await self.finish(req, lease, outs)
        finally:
            self.busy.pop(req.request_id, None)
        if self.waiting and not self.busy and not self.stopping:  # else left pending
            nxt = self.waiting.pop()
            try:
                await self.start(nxt)
            except Exception:  # Redis down: still pending there, resumed by the next owner
                log.exception("retrain %s could not start", nxt.request_id)

    async def wait(self, req: Control) -> None:
        """``req`` (the monitor's) waits for the running retrain; older waiting ones go."""
        if not await asyncio.to_thread(self.pending.put, req, "waiting"):
            return  # answered meanwhile
        old, self.waiting[:] = list(self.waiting), [req]
        await self.publish(_supersede(self.trainer, old, req), old)

    async def accept(self, req: Control) -> None:
        """A retrain request from ``control``: run, wait or fail at once; while the worker
        stops, left pending (no "already running" or "superseded" answer: the next owner of
        ``control`` carries it out, and may find nothing running)."""
        if self.stopping:
            await self.leave(req)
        elif self.busy and req.details.get("source") == "monitor":
            await self.wait(req)
        elif self.busy:
            running = next(iter(self.busy))
            msg = f"a retrain is already running (request {running}); try later"
            await self.publish(self.trainer.outcome(req, False, msg, {"running": running}), [req])
        else:
            await self.start(req)

    async def finish(self, req: Control, lease: Lease, outs: list[Out] | None) -> None:
        """Publish ``outs`` if the lease is still ours (None: it was lost), then let it go."""
        try:
            if outs is None or not await asyncio.to_thread(lease.held):
                log.warning("lost the lease of %s %s: no outcome", req.action, req.request_id)
            elif outs:  # a reset handed over has none: the learner answers it
                await self.publish(outs, [req])
            await asyncio.to_thread(lease.release)
            self.held.pop(req.request_id, None)
        except Exception:  # still pending in Redis: resumed by the owner of ``control``
            log.exception("the outcome of %s %s was not published", req.action, req.request_id)

    async def change(self, req: Control) -> None:
        """A promote, rollback or reset: carried out at once (a retrain may be running)."""
        self.quick.add(req.request_id)
        try:
            lease = await self.lease(req)
            if lease is None:
                return
            try:
                outs: list[Out] | None = await asyncio.to_thread(self.trainer.handle, req, lease)
            except LeaseLost:
                outs = None
            except Exception as exc:  # a bug or Redis down: answer, never retry it forever
                log.exception("%s %s crashed", req.action, req.request_id)
                outs = self.trainer.outcome(req, False, f"{req.action} crashed: {exc!r}", {})
            await self.finish(req, lease, outs)
        finally:
            self.quick.discard(req.request_id)

    async def stop(self) -> None:
        """The worker stops: no request is started from now on (a waiting retrain, or one
        that comes or is resumed, stays pending with its lease free for the next owner of
        ``control``, which answers it), and every lease held is let go (:meth:`release_all`).
        """
        self.stopped = True
        await asyncio.to_thread(self.release_all)

    def release_all(self) -> None:
        """The worker stops: let every lease go, so the next owner of ``control`` resumes the
        requests at once. A retrain still running here is fenced off: it ends at its next
        step (a fit's child process is killed within a second), registers and answers
        nothing (what it registered before is finished by the next owner, streams/trainer.py)."""
        for lease in list(self.held.values()):
            with contextlib.suppress(Exception):
                lease.release()
        self.held.clear()

    async def resume(self) -> None:
        """Take up the pending requests left by an earlier owner of ``control`` (or by a
        worker whose lease ran out); none while this worker stops."""
        if self.stopping:
            return
        entries, dropped = await asyncio.to_thread(self.pending.load)
        msg = f"dropped when resumed: more than {PENDING_MAX} control requests were pending"
        await self.publish(
            [o for d in dropped for o in self.trainer.outcome(d, False, msg, {})], dropped
        )
        for req, state in entries:
            if self.holds(req.request_id):
                continue
            log.info("resuming %s %s %s", state, req.action, req.request_id)
            if req.action != "retrain":
                await self.change(req)
            elif self.busy:
                if await asyncio.to_thread(self.pending.put, req, "waiting"):
                    self.waiting.append(req)  # the last (the newest) runs first
            else:
                await self.start(req)


async def _renew(lease: Lease) -> None:
    """Renew ``lease`` every :data:`RENEW_S` until cancelled or lost (the fence then stops
    the holder's writes)."""
    while True:
        await asyncio.sleep(RENEW_S)
        with contextlib.suppress(Exception):  # Redis down: the next try, or the TTL, decides
            if not await asyncio.to_thread(lease.renew):
                log.warning("the lease of %s was lost", lease.request_id)
                return


def _supersede(trainer: Trainer, waiting: list[Control], newer: Control) -> list[Out]:
    """The answers to the waiting requests ``newer`` replaces."""
    msg = f"superseded by the monitor's newer request {newer.request_id}"
    return [o for old in waiting for o in trainer.outcome(old, False, msg, {})]
