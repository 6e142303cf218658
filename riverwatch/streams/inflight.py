"""What the batch loop keeps about batches in flight (:class:`Ledger`: the batches produced
and not yet acknowledged, and the offsets acknowledged per partition), and the worker's
collector and heap settings."""

from __future__ import annotations

import ctypes
import gc
import time
from collections import deque
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, TopicPartition

from riverwatch.streams.records import Record

# Young-generation threshold once the start-up objects are frozen: a batch allocates tens of
# thousands of short-lived objects, and at the default (700) the collector runs many times per
# batch and walks the long-lived objects in its full collections (50-170 ms pauses measured).
GC_THRESHOLDS = (50_000, 20, 100)

Partition = tuple[str, int]


def tune_gc() -> None:
    """Freeze what start-up allocated (models, modules) out of the collector's sight, and
    collect the young generation less often; time every collection from then on
    (:func:`gc_pauses`). Process-wide: call it once the worker started."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    watch_gc()


# glibc keeps the memory a process frees (a batch's parsed records and frames, a judged
# window's arrays) in its heaps for reuse and rarely gives it back, so a worker's RSS (what a
# container's memory limit charges) stays at its highest point: after 60 s at 5,000 tx/s a
# scorer held 51 MiB it had freed (345 -> 294 MiB when told to return it). malloc_trim(0)
# returns the free pages (whole pages; the heap's layout is unchanged). Called through ctypes
# by hand: no maintained library wraps it. None off glibc (musl, macOS): nothing to call.
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # the process's own libc


def trim_heap() -> bool:
    """Give the heap memory this process freed back to the OS (glibc's ``malloc_trim``; the
    call releases the interpreter lock while it runs). False where there is no such call."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


# (generation, seconds) of each collection not yet taken by gc_pauses(). The callback only
# appends: it runs wherever a collection starts, and observing a histogram there could deadlock
# (prometheus-client's multiprocess mode guards every sample with one process-wide lock, which
# the thread being collected may hold). Bounded: a process nobody drains keeps the newest.
_PAUSES: deque[tuple[int, float]] = deque(maxlen=10_000)
_started = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _PAUSES.append((info["generation"], time.perf_counter() - _started[0]))


def watch_gc() -> None:
    """Time every collection of this process (once, however often called)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def gc_pauses() -> list[tuple[int, float]]:
    """The collections timed since the last call, oldest first: (generation, seconds)."""
    out = []
    while True:
        try:
            out.append(_PAUSES.popleft())
        except IndexError:  # drained (by this thread or another)
            return out


@dataclass
class InFlight:
    """One batch whose outputs were produced: its offsets, and its delivery outcomes so far."""

    first: dict[Partition, int]  # the first offset consumed per partition
    end: dict[Partition, int]  # one past the last
    outputs: int = 0
    # one entry per delivery callback (None: acknowledged). Appended to, never counted down:
    # list.append is atomic, and another thread's flush of the shared producer may serve them.
    outcomes: list[KafkaError | None] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, records: list[Record]) -> InFlight:
        """The offsets a list of records spans."""
        first: dict[Partition, int] = {}
        end: dict[Partition, int] = {}
        for r in records:
            key = (r.topic, r.partition)
            first[key] = min(first.get(key, r.offset), r.offset)
            end[key] = max(end.get(key, 0), r.offset + 1)
        return cls(first, end)

    def delivered(self, err: KafkaError | None, _msg: object) -> None:
        """The producer's delivery callback for each of this batch's outputs."""
        self.outcomes.append(err)

    @property
    def done(self) -> bool:
        """Every output has an outcome (acknowledged or failed)."""
        return len(self.outcomes) >= self.outputs

    @property
    def errors(self) -> list[str]:
        """The delivery errors so far."""
        return [str(e) for e in self.outcomes if e is not None]


class Ledger:
    """The batches produced but not yet acknowledged, in consumption order, and per partition
    the next offset to commit (one past the last record whose batch was acknowledged)."""

    def __init__(self) -> None:
        # (topic, partition) -> the next offset to commit: one past the last acknowledged record
        self.acked: dict[Partition, int] = {}
        # batches produced but not yet acknowledged, in consumption order
        self.pending: deque[InFlight] = deque()

    def ack_done(self) -> bool:
        """Acknowledge the batches at the head of the queue whose outputs were all delivered;
        True when any was."""
        acked = False
        while self.pending and self.pending[0].done and not self.pending[0].errors:
            for key, end in self.pending.popleft().end.items():
                self.acked[key] = max(self.acked.get(key, 0), end)
            acked = True
        return acked

    def head_failed(self, flush_timeout_s: float) -> bool:
        """The oldest batch in flight has a delivery error, or waited past the flush timeout."""
        if not self.pending:
            return False
        head = self.pending[0]
        if head.done:
            return bool(head.errors)
        return time.monotonic() - head.since > flush_timeout_s

    def drop_pending(self, records: list[Record] | None) -> tuple[dict[Partition, int], list[str]]:
        """Forget the batches still in flight (and ``records``, a batch not produced): the
        first offset per partition to consume again, and the delivery errors met."""
        first: dict[Partition, int] = {}
        failed = list(self.pending)
        if records:
            failed.append(InFlight.of(records))
        errors = [e for b in self.pending for e in b.errors]
        self.pending.clear()
        for b in failed:
            for key, offset in b.first.items():
                first[key] = min(first.get(key, offset), offset)
        return first, errors

    def offsets(self, only: set[Partition] | None = None) -> list[TopicPartition]:
        """The acknowledged offsets to commit (of the partitions ``only`` names, if given)."""
        return [
            TopicPartition(t, p, o)
            for (t, p), o in self.acked.items()
            if only is None or (t, p) in only
        ]

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Partitions no longer this member's: never commit over their next owner."""
        for tp in partitions:
            self.acked.pop((tp.topic, tp.partition), None)
