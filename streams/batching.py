"""A confluent-kafka batch consumer loop: the transport of the hot scoring path.

Why not a faust agent: faust costs ~3 event-loop iterations and ~4 task creations per event,
which caps an agent that only counts at ~11k events/s on this machine, and ``stream.take``
rides the same per-event path (ARCHITECTURE.md, "Traps"). The scorer must do >= 20k/s per
core, so it consumes whole batches with confluent-kafka (librdkafka) in a thread, run as a
service of the faust worker. It keeps the guarantees of an agent: one consumer group, commits
only after a batch's outputs are acknowledged (at-least-once), bad records dead-lettered.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from core.kafka import consumer
from core.metrics import BATCH_SIZE, CONSUMER_LAG, EVENTS
from core.settings import Settings
from streams.records import Out, Record

log = logging.getLogger(__name__)
Handler = Callable[[list[Record]], list[Out]]


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
    ):
        self.s = settings
        self.topic = topic
        self.label = topic.removeprefix(settings.topic_prefix)  # metrics use the bare name
        self.group = group
        self.handler = handler
        self.producer = producer
        self.name = name
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once partitions are assigned
        self.assigned: frozenset[int] = frozenset()  # partitions this loop owns (for /readyz)
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

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
            [self.topic], on_assign=self._assign, on_revoke=self._revoke, on_lost=self._revoke
        )
        wait = self.s.score_batch_wait_ms / 1000
        try:
            while not self.stopping.is_set():
                msgs = self._next_batch(c, wait)
                if not msgs:
                    continue
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
                if records:
                    self._handle(records)
                c.commit(asynchronous=True)
        finally:
            with contextlib.suppress(KafkaException):  # nothing consumed yet: nothing to commit
                c.commit(asynchronous=False)
            c.close()

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

    def _handle(self, records: list[Record]) -> None:
        BATCH_SIZE.labels(stage=self.name).observe(len(records))
        EVENTS.labels(topic=self.label, outcome="consumed").inc(len(records))
        outs = self.handler(records)
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
        remaining = self.producer.flush(30)
        if remaining or failed:
            # Not committing is what keeps at-least-once: crash, and the batch is redone.
            raise RuntimeError(
                f"{self.name}: {remaining} outputs unacknowledged, delivery errors: {failed[:3]}"
            )
