"""What the batch loop keeps about batches in flight, and the worker's collector settings."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError

from riverwatch.streams.records import Record

# Young-generation threshold once the start-up objects are frozen: a batch allocates tens of
# thousands of short-lived objects, and at the default (700) the collector runs many times per
# batch and walks the long-lived objects in its full collections (50-170 ms pauses measured).
GC_THRESHOLDS = (50_000, 20, 100)

Partition = tuple[str, int]


def tune_gc() -> None:
    """Freeze what start-up allocated (models, modules) out of the collector's sight, and
    collect the young generation less often. Process-wide: call it once the worker started."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
