"""The ``learning`` role: ``labels`` -> feature rows -> the online learner, snapshots, resets.

The ``labels`` agent (faust, micro-batches via ``take_events``) feeds the learner
(streams/learning.py), guarded as the scoring loop is (streams/guard.py): a label it raises on
is dead-lettered with the error and its origin, an outage retried with a backoff. A snapshot
timer also carries out pending resets of the online model, and retries the labels that came
before their transaction (streams/early.py), on the worker that owns ``labels``. One thread
owns the learner, so learning and snapshotting never touch the model at once.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from mode import Service

from riverwatch.streams.batching import TRANSIENT
from riverwatch.streams.guard import Guard
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Out, Record, raw_topic
from riverwatch.streams.runtime import OwnerThread, WorkerContext, produce

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the ``labels`` agent, the snapshot timer and the last snapshot at stop to ``app``."""
    store = ctx.feature_store(ctx.redis)
    snapshots = ctx.snapshots(ctx.redis)
    learner: dict[str, Learner] = {}  # created on first use: only the label owner needs one
    thread = OwnerThread("learner")

    def get_learner() -> Learner:
        if "l" not in learner:
            offline = ctx.offline(ctx.worker)
            learner["l"] = Learner(ctx, ctx.redis, store, snapshots, ctx.worker, offline)
        return learner["l"]

    guard = Guard("learner", "labels", ctx.names.topic("deadletter"), ctx.worker)

    def learn_batch(records: list[Record]) -> list[Out]:
        """Learn a batch; the records the learner raises on are dead-lettered (streams.guard)."""
        current = get_learner()
        return guard.isolated(current.process, records, current.rejects.count_failed)

    @app.service
    class LearnerService(Service):
        async def on_stop(self) -> None:
            if "l" in learner:  # last snapshot and offline rows before the process goes
                await thread.run(learner["l"].maybe_snapshot, True)

    labels_name = ctx.names.topic("labels")

    def owns_labels() -> bool:
        """True while this worker is assigned the ``labels`` partition: the learner's owner."""
        try:
            return any(tp.topic == labels_name for tp in app.consumer.assignment())
        except ConsumerNotStarted:
            return False

    def tick(owner: bool) -> list[Out]:
        current = get_learner()
        current.maybe_snapshot()
        # A worker that lost ``labels`` in a rebalance keeps its Learner, whose model is stale:
        # only the owner may replace the model, or two writers would publish versions.
        if not owner:
            return []
        # labels that came before their transaction, retried (streams/early.py), guarded as a
        # batch of ``labels`` is: one whose row cannot be learned from is dead-lettered
        records, parked = current.parked_due()
        if not records:
            return current.check_resets()
        return guard.isolated(
            lambda recs: current.process(recs, parked), records, lambda _, bad: current.unpark(bad)
        )

    @app.agent(raw_topic(app, labels_name))
    async def learn(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.2):
            await guard.run(app, events, lambda records: thread.run(learn_batch, records))

    @app.timer(interval=max(0.2, ctx.worker_config.snapshot_every_s / 2))
    async def snapshot() -> None:
        # Also serves resets while no labels flow (take_events yields only non-empty batches).
        owner = owns_labels()
        if "l" in learner or owner:
            try:
                await produce(app, await thread.run(tick, owner))
            except TRANSIENT as exc:  # an outage must not crash the worker: the next tick
                log.warning("learner: snapshot and resets not done, Redis or Kafka down: %r", exc)
