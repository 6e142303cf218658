"""A confluent-kafka batch consumer loop: the transport of the hot scoring path.

Why not a faust agent: faust costs ~3 event-loop iterations and ~4 task creations per event,
which caps an agent that only counts at ~11k events/s on this machine, and ``stream.take``
rides the same per-event path (ARCHITECTURE.md, "Traps"). The scorer must do >= 20k/s per
core, so it consumes whole batches with confluent-kafka (librdkafka) in a thread, run as a
service of the faust worker. It keeps the guarantees of an agent: one consumer group, commits
only after a batch's outputs are acknowledged (at-least-once), bad records dead-lettered.

At-least-once, in detail:

* a batch whose handler raises is bisected until the records that raise are alone
  (:func:`streams.records.isolate`); each goes to ``deadletter`` with the error and its origin,
  the others are handled; the loop goes on;
* the offsets committed are explicit: one past the last record of each partition whose batch's
  outputs the broker acknowledged, never the consumer's position;
* outputs are produced without waiting: the loop handles the next batch while the broker
  acknowledges the last one's (at most :data:`MAX_IN_FLIGHT` batches). Each batch counts its
  outstanding outputs in the delivery callbacks; batches are acknowledged in consumption order,
  so a committed offset never passes a batch whose outputs are not all acknowledged;
* a batch whose outputs are not all acknowledged (delivery errors, flush timeout), or whose
  handler met a transient error (Redis or Kafka unavailable), is not committed: the producer
  is flushed, the batches before it are acknowledged, and the consumer is sought back to the
  first offsets of it and of every batch after it, consumed again after an exponential backoff.
  The handler is idempotent by ``event_id`` (a re-delivered event re-emits its stored outputs),
  so a retry changes nothing twice.

Committing, seeking back and the rebalance callbacks, which share the consumer's ledger of
batches in flight with the loop, are its base class (offsets.py); the pure parts live in
fetch.py, inflight.py and records.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException, Producer

from riverwatch.context import Context
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.core.kafka import consumer
from riverwatch.core.metrics import BATCH_SECONDS, BATCH_SIZE, EVENTS, GC_PAUSES
from riverwatch.core.redis import UNAVAILABLE as REDIS_UNAVAILABLE
from riverwatch.streams.fetch import next_batch, to_records
from riverwatch.streams.inflight import InFlight, Ledger, Partition, gc_pauses, tune_gc
from riverwatch.streams.offsets import ConsumerOffsets
from riverwatch.streams.records import Handler, Out, Record, dead_lettered, isolate, raised_on
from riverwatch.streams.runtime import WorkerContext, worker_id

__all__ = ["TRANSIENT", "BatchLoop", "tune_gc"]

log = logging.getLogger(__name__)

# Errors that say the infrastructure is unavailable, not that a record is bad: the batch is
# retried whole, never bisected into dead letters.
TRANSIENT: tuple[type[BaseException], ...] = (
    *REDIS_UNAVAILABLE,
    KafkaException,
    ServiceUnavailable,
    ConnectionError,
    TimeoutError,
)
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
# Batches whose outputs may be in flight at once: enough to hide the broker's acknowledgement
# round trip behind the next batches' work, few enough that a retry replays little.
MAX_IN_FLIGHT = 8


class BatchLoop(ConsumerOffsets):
    """Consume ``topic`` in micro-batches, hand each to ``handler``, produce, then commit
    (``ctx``: the broker, the names, the batch size)."""

    # Set after construction by a loop off the latency path (the monitor's): more topics for
    # the same consumer (records carry their topic; the handler then counts its dead letters
    # per topic), a top-up wait per batch (streams.fetch.next_batch), and hooks run in the
    # loop's thread when a poll brings nothing and when the loop stops (before its last commit).
    also: tuple[str, ...] = ()
    fill_s = 0.0
    latency = False  # on the latency path: fetches answered with the first byte (core.kafka)
    on_idle: Callable[[], None] | None = None
    on_stop: Callable[[], None] | None = None
    prefix = ""

    def __init__(
        self,
        ctx: Context,
        topic: str,
        group: str,
        handler: Handler,
        producer: Producer,
        name: str,
        flush_timeout_s: float = 30.0,
        checkpoint: Callable[[], None] | None = None,
        commit_every_s: float = 0.0,
        on_failed: Callable[[list[Record], list[Record]], object] | None = None,
    ):
        self.kafka, self.batch_max = ctx.kafka_config, ctx.worker_config.batch_max
        self.topic = topic
        self.prefix = ctx.names.prefix
        self.label = topic.removeprefix(self.prefix)  # metrics use the bare name
        self.group = group
        self.handler = handler
        self.producer = producer
        self.name = name
        self.flush_timeout_s = flush_timeout_s
        # Called before every commit: a handler whose state must be saved before the offsets
        # that built it are committed (the forecaster's snapshots). With ``commit_every_s``,
        # commits (and so checkpoints) come at most that often.
        self.checkpoint = checkpoint
        self.commit_every_s = commit_every_s
        self.on_failed = on_failed  # (batch, records it raised on): counted as rejects
        self.inherit_from: str | None = None  # the group that read these topics before (inherit.py)
        self._uncommitted = False
        self._committed_at = float("-inf")
        self.t_dead = ctx.names.topic("deadletter")
        self.worker = worker_id()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once partitions are assigned
        # (topic, partition) this loop owns: with ``also``, one partition number may be owned
        # on one topic and not on another
        self.owned: frozenset[Partition] = frozenset()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.ledger = Ledger()  # the batches in flight and the offsets acknowledged

    @classmethod
    def of_worker(
        cls, ctx: WorkerContext, topic: str, name: str, handler: Handler, **options: Any
    ) -> BatchLoop:
        """A worker role's loop on the bare ``topic``, in the consumer group ``name`` (its name
        in logs and metrics too), producing with the worker's producer."""
        topic, group = ctx.names.topic(topic), ctx.group(name)
        return cls(ctx, topic, group, handler, ctx.producer, name, **options)

    def start(self, on_crash: Callable[[BaseException], None]) -> None:
        """Run the loop in a daemon thread; ``on_crash`` is called if it dies."""

        def run() -> None:
            try:
                self.run()
            except BaseException as exc:
                self.error = exc
                log.exception("%s loop crashed", self.name)
                on_crash(exc)

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the loop to finish its batch, commit and close; wait for it."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The loop itself (blocking)."""
        # librdkafka computes the lag per partition itself; its statistics callback runs inside
        # consume(), on this thread.
        stats = {"statistics.interval.ms": 2000, "stats_cb": self._lag}
        c = consumer(self.kafka, self.group, self.latency, **stats)
        topics = [self.topic, *self.also]
        c.subscribe(topics, on_assign=self._assign, on_revoke=self._revoked, on_lost=self._lost)
        delay = BACKOFF_MIN_S
        try:
            while not self.stopping.is_set():
                self.producer.poll(0)  # serve delivery callbacks
                self._uncommitted |= self.ledger.ack_done()
                now = time.monotonic()
                if self._uncommitted and now - self._committed_at >= self.commit_every_s:
                    self._commit(c, asynchronous=True)
                if self.ledger.head_failed(self.flush_timeout_s):
                    self._retry(c, [], "delivery")
                    self.stopping.wait(delay)
                    delay = min(delay * 2, BACKOFF_MAX_S)
                    continue
                if len(self.ledger.pending) >= MAX_IN_FLIGHT:
                    self.producer.poll(0.005)
                    continue
                block_s = 0.01 if self.ledger.pending else 0.1
                records = to_records(next_batch(c, self.batch_max, block_s, self.fill_s), self.name)
                if not records:
                    if self.on_idle is not None:
                        self.on_idle()
                    continue
                if self._process(records):
                    delay = BACKOFF_MIN_S
                    continue
                # Not handled: consume the batch again, later. Committing nothing past it is
                # what keeps at-least-once if this process dies meanwhile.
                self._retry(c, records, "transient")
                self.stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        finally:
            self._settle(c)
            if self.on_stop is not None:
                self.on_stop()
            self._commit(c, asynchronous=False)  # what was acknowledged, nothing more
            c.close()

    def _checkpoint(self) -> bool:
        """Run the checkpoint; False (commit nothing) when the infrastructure failed it."""
        if self.checkpoint is None:
            return True
        try:
            self.checkpoint()
            return True
        except TRANSIENT as exc:
            log.warning("%s: checkpoint failed, nothing committed: %r", self.name, exc)
            return False

    def _poison(self, rec: Record, exc: Exception, failed: list[Record]) -> Out:
        """The dead letter of a record the handler raised on, alone (added to ``failed``)."""
        failed.append(rec)
        log.error(
            "%s: %s[%d]@%d dead-lettered: %r", self.name, rec.topic, rec.partition, rec.offset, exc
        )
        return raised_on(self.t_dead, rec, exc, self.worker)

    def _process(self, records: list[Record]) -> bool:
        """Handle a batch and produce its outputs (acknowledged later, see :meth:`Ledger.ack_done`);
        False when the handler met a transient error."""
        started = time.perf_counter()
        for generation, pause in gc_pauses():  # timed by the collector's callback
            GC_PAUSES.labels(generation=str(generation)).observe(pause)
        BATCH_SIZE.labels(stage=self.name).observe(len(records))
        for label, n in self._by_topic(records).items():
            EVENTS.labels(topic=label, outcome="consumed").inc(n)
        failed: list[Record] = []  # the records the handler raised on, dead-lettered alone
        try:
            outs = isolate(
                self.handler, records, lambda r, e: self._poison(r, e, failed), TRANSIENT
            )
            if failed and self.on_failed is not None:  # counted as rejects (streams.rejects)
                self.on_failed(records, failed)
            if not self.also:  # its dead letters (parse rejects, poison records), counted once
                dead = dead_lettered(outs, self.t_dead)  # it is handled
                EVENTS.labels(topic=self.label, outcome="deadletter").inc(dead)
        except TRANSIENT as exc:
            log.warning("%s: batch of %d not handled, will retry: %r", self.name, len(records), exc)
            return False
        self.ledger.pending.append(self._produce(InFlight.of(records), outs))
        BATCH_SECONDS.labels(stage=self.name).observe(time.perf_counter() - started)
        return True

    def _by_topic(self, records: list[Record]) -> dict[str, int]:
        """Records per bare topic name (the metrics' label)."""
        if not self.also:
            return {self.label: len(records)}
        return Counter(r.topic.removeprefix(self.prefix) for r in records)

    def _produce(self, batch: InFlight, outs: list[Out]) -> InFlight:
        """Produce ``outs`` without waiting; ``batch`` counts their acknowledgements."""
        batch.outputs = len(outs)
        produce, cb = self.producer.produce, batch.delivered
        for o in outs:
            while True:
                try:
                    produce(o.topic, o.value, o.key, on_delivery=cb)
                    break
                except BufferError:  # local queue full: let librdkafka drain it, then retry
                    self.producer.poll(0.05)
                except KafkaException as exc:  # refused before sending (too large, no topic):
                    cb(exc.args[0], None)  # a failed delivery, the batch retried (not a crash)
                    break
        return batch
