"""Map simulated time to the wall clock, merge simulators, and pump events into a sink.

Speeds are in simulated days per real minute: 1.0 plays a day a minute (1,440x real time),
``None`` plays as fast as the consumer takes events. The clock and the sleep are injectable
so tests run on a fake clock and never sleep.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING

from riverwatch.simulator.base import DAY_S, SimEvent

if TYPE_CHECKING:
    from riverwatch.simulator.sinks import Sink

Clock = Callable[[], float]
Sleep = Callable[[float], object]

_AT = attrgetter("at")


def merge(*streams: Iterable[SimEvent]) -> Iterator[SimEvent]:
    """Merge time-ordered event streams into one time-ordered stream (lazy; ties keep order).

    Each input must already be non-decreasing in ``at``; endless inputs are fine.
    """
    return heapq.merge(*streams, key=_AT)


def _speed(sim_days_per_minute: float) -> float:
    if not sim_days_per_minute > 0:
        raise ValueError("sim_days_per_minute must be > 0 (or None for as fast as possible)")
    return sim_days_per_minute * DAY_S / 60  # simulated seconds per real second


def paced(
    events: Iterable[SimEvent],
    sim_days_per_minute: float | None,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Iterator[SimEvent]:
    """Yield each event no earlier than its simulated time mapped onto the wall clock.

    The first event is due at once and anchors the mapping; event ``e`` is then due
    ``(e.at - first.at) / (sim_days_per_minute * 1440)`` real seconds later. A consumer that
    falls behind gets the overdue events without sleeping (it catches up; it is never ahead).
    """
    if sim_days_per_minute is None:
        yield from events
        return
    speed = _speed(sim_days_per_minute)
    origin: tuple[float, float] | None = None
    for ev in events:
        if origin is None:
            origin = (ev.at, clock())
        wait = origin[1] + (ev.at - origin[0]) / speed - clock()
        if wait > 0:
            sleep(wait)
        yield ev


def paced_batches(
    events: Iterable[SimEvent],
    sim_days_per_minute: float | None,
    *,
    max_batch: int = 1000,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Iterator[list[SimEvent]]:
    """Like :func:`paced`, grouped for a sink: each list holds the events due by now.

    A batch is handed over as soon as the next event is not yet due (so nothing waits in a
    batch while the pacer sleeps) or when it reaches ``max_batch``.
    """
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    if sim_days_per_minute is None:
        it = iter(events)
        while chunk := list(islice(it, max_batch)):
            yield chunk
        return
    speed = _speed(sim_days_per_minute)
    origin: tuple[float, float] | None = None
    batch: list[SimEvent] = []
    for ev in events:
        if origin is None:
            origin = (ev.at, clock())
        due = origin[1] + (ev.at - origin[0]) / speed
        if due > clock():
            if batch:
                yield batch
                batch = []
            # Re-read the clock: the consumer may have spent the wait on the batch.
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        batch.append(ev)
        if len(batch) >= max_batch:
            yield batch
            batch = []
    if batch:
        yield batch


def pump(
    events: Iterable[SimEvent],
    sink: Sink,
    *,
    sim_days_per_minute: float | None = None,
    max_batch: int = 1000,
    limit: int | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> int:
    """Send ``events`` (at most ``limit``) to ``sink`` in paced batches; return how many.

    Does not close the sink: the caller owns it (``close`` flushes and reports failures).
    """
    if limit is not None:
        events = islice(events, limit)
    sent = 0
    for batch in paced_batches(
        events, sim_days_per_minute, max_batch=max_batch, clock=clock, sleep=sleep
    ):
        sink.send(batch)
        sent += len(batch)
    return sent
