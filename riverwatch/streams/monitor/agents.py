"""The monitor's consumer: ``scores`` and ``labels`` -> drift, fairness, performance, policy.

One confluent-kafka batch loop (streams/batching.py, the scorer's) reads both topics in the
consumer group ``monitor`` and hands each batch to :class:`MonitorHandler`, which feeds its
``scores`` and its ``labels`` records to one :class:`streams.monitor.runner.Monitor`. One loop
over both topics, not two: the loop's thread is the only one that ever touches the monitor
(batches, checkpoints, snapshots), so its state (windows, detectors, policy) needs no lock.
Faust agents cost the helper about a third of its CPU in per-message machinery.

The monitor is off the latency path, so its loop takes its time: a batch is topped up for
:data:`FILL_S` (up to :data:`BATCH_MAX` records) and offsets are committed at most every
:data:`COMMIT_EVERY_S`. Committing after every micro-batch (tens to hundreds a second at a
few hundred tx/s) is what stalled the first version of this loop: on a loaded machine the
broker's group coordinator answered offset commits seconds late, heartbeats queued behind
them, and the consumers' sessions timed out (the scorer's too): rebalances, scoring stalled.

What the loop guarantees (batching.py): a batch's outputs (alerts, control requests, dead
letters) are produced, and its offsets committed only once the broker acknowledged them all;
a batch the broker did not take, or that met Redis or Kafka down, is consumed again after a
backoff. The monitor is not idempotent, so the handler remembers the outputs of the records
it handled in the last batches (:class:`_Handled`): a record consumed again is not counted
again, its outputs are sent again. The monitor reads Redis before it takes a batch in and
writes it after, in one transaction; when that write fails, the batch is owed, not taken in
again: its write is made when the loop consumes it again. A record the monitor raises on is
found by splitting its topic's part of the batch and dead-lettered with the error and its
origin, counted once as a data-quality reject (streams/guard.py); the rest is monitored.

Control requests are kept in Redis (``monitor:outbox``) until the broker acknowledges their
records: the loop's producer notes each acknowledged control record (:class:`_Acks`) and they
leave the outbox before the next commit; a monitor that starts sends those left by the one
before (``Monitor.unsent``, :mod:`streams.monitor.persist`) with its first batch. Snapshots
(:mod:`streams.monitor.snapshot`) are written after a batch when due, when a poll brings
nothing (a lull), and at a clean stop before the last commit. ``labels`` has one partition,
so one monitor sees every label; ``scores`` has several: with more than one monitoring
worker, each monitors the windows of its partitions.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import faust
from confluent_kafka import KafkaError, Producer

from riverwatch.context import Context
from riverwatch.core.redis import redis_client
from riverwatch.streams.batching import MAX_IN_FLIGHT, TRANSIENT, BatchLoop
from riverwatch.streams.guard import Guard
from riverwatch.streams.monitor.keys import Key, Keys
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record
from riverwatch.streams.rejects import RejectCounter
from riverwatch.streams.runtime import WorkerContext, loop_service, stop_worker

log = logging.getLogger(__name__)

BATCH_MAX = 2000  # records per batch, at most (the agents took 2000 within 0.5 s)
FILL_S = 0.5  # a batch is topped up this long once its first record is in
COMMIT_EVERY_S = 1.0  # offsets (and the outbox's acknowledged requests) at most this often
Owed = Callable[[], list[Out]]  # a write the monitor owes for records it took in


class _Acks:
    """A producer that notes the keys (request ids) of the ``control`` records the broker
    acknowledged; everything else is the wrapped producer's."""

    def __init__(self, producer: Producer, t_control: str):
        self._p, self._t = producer, t_control
        self.keys: list[bytes] = []  # appended to in delivery callbacks

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        if topic != self._t or key is None:
            self._p.produce(topic, value, key, on_delivery=on_delivery)
            return

        def delivered(err: KafkaError | None, msg: object) -> None:
            if err is None:
                self.keys.append(key)  # before the batch counts it: noted before its commit
            on_delivery(err, msg)

        self._p.produce(topic, value, key, on_delivery=delivered)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)


class _Handled:
    """The records handled in the last batches (their keys, :class:`Keys`) with their outputs:
    a batch the loop consumes again (its outputs not acknowledged, or a transient error after
    part of it was handled) is not counted twice; its outputs are sent again instead. A part
    the monitor took in but could not write (Redis failed its write, :meth:`Monitor._emit`) is
    owed: its write is made again when the loop consumes it again. Bounded: the loop replays
    at most the batches in flight and the one it handles."""

    def __init__(self, batches: int = 2 * (MAX_IN_FLIGHT + 2)):  # a batch adds one per topic
        # [keys, outputs, the write still owed (None once made)]
        self.parts: deque[list[Any]] = deque(maxlen=batches)

    def add(self, records: list[Record], outs: list[Out], owed: Owed | None = None) -> None:
        self.parts.append([Keys(_key(r) for r in records), outs, owed])

    def replayed(self, records: list[Record]) -> tuple[list[Record], list[Out]]:
        """The records of ``records`` not handled yet, and the outputs of those that were
        (raises a transient error while a write owed for them still fails)."""
        if not self.parts:
            return records, []
        keys = Keys(_key(r) for r in records)
        hits = [p for p in self.parts if p[0].overlaps(keys)]
        if not hits:
            return records, []
        for p in hits:  # still in flight again: kept
            self.parts.remove(p)
            self.parts.append(p)
            if p[2] is not None:
                p[1], p[2] = p[1] + p[2](), None
        fresh = [r for r in records if not any(_key(r) in p[0] for p in hits)]
        return fresh, [o for p in hits for o in p[1]]


def _piece(
    m: Monitor,
    method: Callable[[list[Record]], list[Out]],
    pieces: list[tuple[list[Record], list[Out], Owed | None]],
    records: list[Record],
) -> list[Out]:
    """``method(records)``, noted in ``pieces`` once the monitor took them in: with their
    outputs, or with the write it owes (Redis failed it)."""
    try:
        outs = method(records)
    except TRANSIENT:
        owed = m.take_owed()
        if owed is not None:
            pieces.append((records, [], owed))
        raise
    pieces.append((records, outs, None))
    return outs


def _key(r: Record) -> Key:
    return (r.topic, r.partition, r.offset)


class MonitorHandler:
    """The loop's handler: a batch of ``scores`` and ``labels`` records -> the monitor."""

    def __init__(self, ctx: Context, make: Callable[[], Monitor], producer: Producer, worker: str):
        names = ctx.names
        self.names = names
        self.t_scores, self.t_labels = names.topic("scores"), names.topic("labels")
        self.t_control = names.topic("control")
        t_dead = names.topic("deadletter")
        self.make = make  # built in the loop's thread, on the first batch
        self.monitor: Monitor | None = None
        self.unsent: list[Out] = []  # left by the monitor before: sent with the first batch
        self.acks = _Acks(producer, self.t_control)
        self.handled = _Handled()
        self.guards = {
            self.t_scores: Guard("monitor-scores", "scores", t_dead, worker),
            self.t_labels: Guard("monitor-labels", "labels", t_dead, worker),
        }
        self.counters: dict[str, RejectCounter] = {}

    def _monitor(self) -> Monitor:
        if self.monitor is None:  # reads its state from Redis (raises while Redis is down)
            m = self.make()
            self.unsent = m.unsent()
            # a score stands for its transaction (streams.rejects)
            self.counters = {
                self.t_scores: RejectCounter(m.r, self.names, "transactions", False),
                self.t_labels: RejectCounter(m.r, self.names, "labels", True),
            }
            self.monitor = m
        return self.monitor

    def process(self, records: list[Record]) -> list[Out]:
        """Dispatch by topic; the outputs (those of records handled already, then the new
        ones', the requests left by the monitor before with the first). Raises a transient
        error (Redis or Kafka down) for the loop to consume the batch again; the parts
        handled by then are remembered, not handled twice."""
        m = self._monitor()
        fresh, outs = self.handled.replayed(records)
        for topic, method in ((self.t_scores, m.process_scores),
                              (self.t_labels, m.process_labels)):  # fmt: skip
            part = [r for r in fresh if r.topic == topic]
            if part:
                count = self.counters[topic].count_failed
                pieces: list[tuple[list[Record], list[Out], Owed | None]] = []
                try:
                    # the requests left before go with the first part (sent again if it is)
                    handle = partial(_piece, m, method, pieces)
                    got = self.unsent + self.guards[topic].isolated(handle, part, count)
                except TRANSIENT:  # the pieces taken in by then: not taken in twice
                    self._taken(pieces)
                    raise
                self.unsent = []
                self.handled.add(part, got)
                outs += got
        return outs

    def _taken(self, pieces: list[tuple[list[Record], list[Out], Owed | None]]) -> None:
        """Remember the pieces of a part the monitor took in before a transient error: those
        handled as one part, the one whose write it owes (the last) as another."""
        done = [(records, outs) for records, outs, owed in pieces if owed is None]
        if done:
            self.handled.add([r for rs, _ in done for r in rs], [o for _, os in done for o in os])
        for records, outs, owed in pieces:
            if owed is not None:
                self.handled.add(records, outs, owed)

    def checkpoint(self) -> None:
        """Before each commit: the control requests the broker acknowledged leave the outbox;
        a snapshot when one is due."""
        keys = self.acks.keys[: len(self.acks.keys)]  # callbacks may append meanwhile
        del self.acks.keys[: len(keys)]
        if self.monitor is None:
            return
        if keys:
            try:
                self.monitor.sent([Out(self.t_control, k, b"") for k in keys])
            except Exception:
                self.acks.keys.extend(keys)  # out of the outbox at the next commit
                raise
        self.monitor.checkpoint(False)

    def idle(self) -> None:
        """A poll brought nothing: a snapshot of the last batches when one is due."""
        if self.monitor is not None:
            self.monitor.checkpoint(False)

    def stop(self) -> None:
        """The loop stops (its batches settled): a last snapshot, before the last commit."""
        if self.monitor is not None:
            self.monitor.checkpoint(True)

    def loop(self, ctx: Context) -> BatchLoop:
        """The batch loop over ``scores`` and ``labels`` (group ``monitor``)."""
        producer = cast(Producer, self.acks)
        group = ctx.group("monitor")
        loop = BatchLoop(ctx, self.t_scores, group, self.process, producer, "monitor",
                         checkpoint=self.checkpoint, commit_every_s=COMMIT_EVERY_S)  # fmt: skip
        loop.also, loop.fill_s, loop.batch_max = (self.t_labels,), FILL_S, BATCH_MAX
        loop.on_idle, loop.on_stop = self.idle, self.stop
        return loop


def register(app: faust.App, ctx: WorkerContext) -> BatchLoop:
    """Add the monitor's loop to ``app`` as a service (the ``monitoring`` role); return it."""
    _ = ctx.drift_columns  # a bad RIVERWATCH_MONITOR_DRIFT_EXCLUDE fails the worker at start

    def make() -> Monitor:
        return Monitor(ctx, redis_client(ctx.redis_config), ctx.worker)

    loop = MonitorHandler(ctx, make, ctx.producer, ctx.worker).loop(ctx)
    loop.inherit_from = app.conf.id  # the faust agents read scores and labels in this group
    loop_service(app, loop, stop_worker("monitoring"))
    return loop
