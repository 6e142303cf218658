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
* a batch whose outputs are not all acknowledged (delivery errors, flush timeout), or whose
  handler met a transient error (Redis or Kafka unavailable), is not committed: the consumer is
  sought back to the batch's first offsets and consumes it again after an exponential backoff.
  The handler is idempotent by ``event_id`` (a re-delivered event re-emits its stored outputs),
  so a retry changes nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable

import orjson
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from core.errors import ServiceUnavailable
from core.kafka import consumer
from core.metrics import BATCH_RETRIES, BATCH_SIZE, CONSUMER_LAG, EVENTS
from core.names import Names
from core.settings import Settings
from streams.records import Handler, Out, Record, dead_letter, isolate

log = logging.getLogger(__name__)

# Errors that say the infrastructure is unavailable, not that a record is bad: the batch is
# retried whole, never bisected into dead letters.
TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    KafkaException,
    ServiceUnavailable,
    ConnectionError,
    TimeoutError,
)
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0


class BatchLoop:
    """Consume ``topic`` in micro-batches, hand each to ``handler``, produce, then commit."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        group: str,
        handler: Handler,
        producer: Producer,
        name: str,
        flush_timeout_s: float = 30.0,
    ):
        self.s = settings
        self.topic = topic
        self.label = topic.removeprefix(settings.topic_prefix)  # metrics use the bare name
        self.group = group
        self.handler = handler
        self.producer = producer
        self.name = name
        self.flush_timeout_s = flush_timeout_s
        self.t_dead = Names(settings.topic_prefix).topic("deadletter")
        self.worker = f"{socket.gethostname()}:{os.getpid()}"  # as streams.app.worker_id
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once partitions are assigned
        self.assigned: frozenset[int] = frozenset()  # partitions this loop owns (for /readyz)
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        # (topic, partition) -> the next offset to commit: one past the last acknowledged record
        self._acked: dict[tuple[str, int], int] = {}

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
        c = consumer(self.s, self.group, **{"statistics.interval.ms": 2000, "stats_cb": self._lag})
        c.subscribe(
            [self.topic], on_assign=self._assign, on_revoke=self._revoked, on_lost=self._lost
        )
        wait = self.s.score_batch_wait_ms / 1000
        delay = BACKOFF_MIN_S
        try:
            while not self.stopping.is_set():
                records = self._records(self._next_batch(c, wait))
                if not records:
                    continue
                if self._process(records):
                    self._ack(records)
                    self._commit(c, asynchronous=True)
                    delay = BACKOFF_MIN_S
                    continue
                # Not acknowledged: consume the batch again, later. Committing nothing past it
                # is what keeps at-least-once if this process dies meanwhile.
                self._rewind(c, records)
                self.stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        finally:
            self._commit(c, asynchronous=False)  # what was acknowledged, nothing more
            c.close()

    def _records(self, msgs: list[Message]) -> list[Record]:
        records = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consumer error %s", self.name, err)
                continue
            _, ts = m.timestamp()
            records.append(
                Record(
                    m.topic() or "",
                    m.partition() or 0,
                    m.offset() or 0,
                    m.key(),
                    m.value(),
                    ts or None,
                )
            )
        return records

    def _ack(self, records: list[Record]) -> None:
        for r in records:
            key = (r.topic, r.partition)
            self._acked[key] = max(self._acked.get(key, 0), r.offset + 1)

    def _commit(self, c: Consumer, asynchronous: bool) -> None:
        """Commit the acknowledged offsets (explicitly: the consumer's position may be past a
        batch that was not acknowledged)."""
        if not self._acked:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._acked.items()]
        try:
            if asynchronous:
                c.commit(offsets=offsets, asynchronous=True)
            else:
                c.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # the next commit carries them again; worst case a replay
            log.warning("%s: commit failed: %s", self.name, exc)

    def _revoked(self, c: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consume(), between batches: commit what this member acknowledged on the
        # partitions it loses, then forget them, so it never commits over their next owner.
        gone = {(tp.topic, tp.partition) for tp in partitions}
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._acked.items() if (t, p) in gone]
        if offsets:
            with contextlib.suppress(KafkaException):
                c.commit(offsets=offsets, asynchronous=False)
        self._lost(c, partitions)

    def _lost(self, c: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost (not revoked): another member may own them already, so commit nothing.
        for tp in partitions:
            self._acked.pop((tp.topic, tp.partition), None)
        self._revoke(c, partitions)

    def _rewind(self, c: Consumer, records: list[Record]) -> None:
        first: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            first[key] = min(first.get(key, r.offset), r.offset)
        for (t, p), offset in first.items():
            try:
                c.seek(TopicPartition(t, p, offset))
            except KafkaException as exc:
                # Not ours any more: uncommitted, so its next owner consumes it from there.
                log.warning(
                    "%s: could not seek %s[%d] back to %d: %s", self.name, t, p, offset, exc
                )

    def _assign(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        self.assigned = self.assigned | {tp.partition for tp in parts}
        self.ready.set()

    def _revoke(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        self.assigned = self.assigned - {tp.partition for tp in parts}
        for tp in parts:  # no longer ours: our last figure must not outlive the owner's
            CONSUMER_LAG.labels(topic=self.label, partition=str(tp.partition)).set(-1)

    def _lag(self, raw: str) -> None:
        # -1 says "unknown" (the gauge's max across processes then shows the owner's figure).
        stats = orjson.loads(raw)
        for p, part in stats.get("topics", {}).get(self.topic, {}).get("partitions", {}).items():
            if p != "-1" and int(p) in self.assigned:
                lag = part.get("consumer_lag", -1)
                CONSUMER_LAG.labels(topic=self.label, partition=p).set(max(lag, -1))

    def _next_batch(self, c: Consumer, wait: float) -> list[Message]:
        # consume(n, timeout) only returns early when n messages are in, so at low rates it
        # would add its whole timeout to every event's latency. Instead: take what is already
        # fetched, else block for the first message, then top up for at most ``wait``.
        n = self.s.score_batch_max
        msgs = c.consume(n, timeout=0)
        if msgs:
            return msgs
        msgs = c.consume(1, timeout=0.1)
        if msgs and n > 1:
            msgs += c.consume(n - 1, timeout=wait)
        return msgs

    def _poison(self, rec: Record, exc: Exception) -> Out:
        """The dead letter of a record the handler raised on, alone."""
        log.error(
            "%s: %s[%d]@%d dead-lettered: %r", self.name, rec.topic, rec.partition, rec.offset, exc
        )
        EVENTS.labels(topic=self.label, outcome="deadletter").inc()
        return dead_letter(self.t_dead, rec, f"{type(exc).__name__}: {exc}", self.worker)

    def _process(self, records: list[Record]) -> bool:
        """Handle a batch and deliver its outputs; True once the broker acknowledged them all."""
        BATCH_SIZE.labels(stage=self.name).observe(len(records))
        EVENTS.labels(topic=self.label, outcome="consumed").inc(len(records))
        try:
            outs = isolate(self.handler, records, self._poison, TRANSIENT)
        except TRANSIENT as exc:
            log.warning("%s: batch of %d not handled, will retry: %r", self.name, len(records), exc)
            BATCH_RETRIES.labels(stage=self.name, reason="transient").inc()
            return False
        if self._deliver(outs):
            return True
        BATCH_RETRIES.labels(stage=self.name, reason="delivery").inc()
        return False

    def _deliver(self, outs: list[Out]) -> bool:
        """Produce ``outs``; True when every one is acknowledged within the flush timeout."""
        failed: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failed.append(str(err))

        for o in outs:
            while True:
                try:
                    self.producer.produce(o.topic, o.value, o.key, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: let librdkafka drain it, then retry
                    self.producer.poll(0.05)
        remaining = self.producer.flush(self.flush_timeout_s)
        if remaining or failed:
            log.warning(
                "%s: %d outputs unacknowledged, delivery errors: %s; the batch will be retried",
                self.name,
                remaining,
                failed[:3],
            )
            return False
        return True
