"""The batch loop's partitions and their offsets: the partitions it owns, the offsets it
commits and those it seeks back to, and the rebalance callbacks that hand partitions over.

The committed offsets are what makes the loop at-least-once (streams/batching.py, "At-least-once,
in detail"), and a rebalance must not break that: a member never commits past a batch whose
outputs were not acknowledged, commits what it acknowledged on a partition when it hands it
over (revoked), and nothing once another member may own it (lost). The methods that read and
write those offsets are here; the loop's consuming and handling of batches only call them.

:class:`ConsumerOffsets` is a base class of :class:`streams.batching.BatchLoop`, not a part it
holds: both read and write the one consumer's ledger of batches in flight and its partitions.
The attributes below are the loop's, set in its ``__init__``, declared here for the type
checker only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from riverwatch.core.kafka import KafkaConfig
from riverwatch.core.metrics import BATCH_RETRIES, CONSUMER_LAG
from riverwatch.streams.fetch import report_lag
from riverwatch.streams.inflight import Ledger, Partition
from riverwatch.streams.inherit import inherited
from riverwatch.streams.records import Record

log = logging.getLogger(__name__)


class ConsumerOffsets:
    """The consumer's side of a batch loop (see the module docstring)."""

    kafka: KafkaConfig
    topic: str
    label: str
    name: str
    producer: Producer
    flush_timeout_s: float
    inherit_from: str | None
    ledger: Ledger
    owned: frozenset[Partition]
    ready: threading.Event
    _uncommitted: bool
    _committed_at: float
    _checkpoint: Callable[[], bool]  # the handler's state saved; False: commit nothing

    @property
    def assigned(self) -> frozenset[int]:
        """The partitions of ``topic`` this loop owns (for /readyz and the lag gauge)."""
        return frozenset(p for t, p in self.owned if t == self.topic)

    def _settle(self, c: Consumer, records: list[Record] | None = None) -> bool:
        """Wait for the outputs in flight; acknowledge the batches fully delivered before the
        first that was not; seek back to where that one (and every later one, and ``records``)
        began. True when something had to be consumed again."""
        remaining = self.producer.flush(self.flush_timeout_s) if self.ledger.pending else 0
        self.ledger.ack_done()
        first, errors = self.ledger.drop_pending(records)
        if errors or remaining:
            log.warning(
                "%s: %d outputs unacknowledged, delivery errors: %s; the batch will be retried",
                self.name,
                remaining,
                errors[:3],
            )
        self._rewind(c, first)
        return bool(first)

    def _retry(self, c: Consumer, records: list[Record], reason: str) -> None:
        """A batch failed (its delivery, or ``records``' handling): consume it again."""
        BATCH_RETRIES.labels(stage=self.name, reason=reason).inc()
        self._settle(c, records)
        self._commit(c, asynchronous=True)

    def _commit(self, c: Consumer, asynchronous: bool) -> None:
        """Commit the acknowledged offsets (explicitly: the consumer's position may be past a
        batch that was not acknowledged)."""
        if not self.ledger.acked or not self._checkpoint():
            return
        self._uncommitted, self._committed_at = False, time.monotonic()
        offsets = self.ledger.offsets()
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
        self._settle(c)  # what is in flight: acknowledged, or consumed again by the next owner
        gone = {(tp.topic, tp.partition) for tp in partitions}
        offsets = self.ledger.offsets(gone)
        if offsets and self._checkpoint():
            with contextlib.suppress(KafkaException):
                c.commit(offsets=offsets, asynchronous=False)
        self._lost(c, partitions)

    def _lost(self, c: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost (not revoked): another member may own them already, so commit nothing.
        self._settle(c)
        self.ledger.forget(partitions)
        self._revoke(c, partitions)

    def _rewind(self, c: Consumer, first: dict[Partition, int]) -> None:
        for (t, p), offset in first.items():
            try:
                c.seek(TopicPartition(t, p, offset))
            except KafkaException as exc:
                # Not ours any more: uncommitted, so its next owner consumes it from there.
                log.warning(
                    "%s: could not seek %s[%d] back to %d: %s", self.name, t, p, offset, exc
                )

    def _assign(self, c: Consumer, parts: list[TopicPartition]) -> None:
        if self.inherit_from:  # a partition new to this group starts where that one left off
            c.assign(inherited(c, self.kafka, self.inherit_from, parts))
        self.owned = self.owned | {(tp.topic, tp.partition) for tp in parts}
        self.ready.set()

    def _revoke(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        self.owned = self.owned - {(tp.topic, tp.partition) for tp in parts}
        for tp in parts:  # no longer ours: our last figure must not outlive the owner's
            if tp.topic == self.topic:
                CONSUMER_LAG.labels(topic=self.label, partition=str(tp.partition)).set(-1)

    def _lag(self, raw: str) -> None:
        report_lag(raw, self.topic, self.label, self.assigned)
