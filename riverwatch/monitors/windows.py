"""Count- and time-based windows over a stream of events, by event time.

A window collects events and, once closed, is handed back with the event-time range it covers
(``window_start``/``window_end``, epoch seconds), which every finding about it carries.
Nothing here reads a clock: time windows close when the watermark passes their end, so a
replay closes the same windows. The watermark is the largest event time seen minus the allowed
lateness, or, with ``source`` (which ordered input an event came by, e.g. its partition), the
event time every source has reached, if later: a source that lags, as one partition of a
backlog does, holds the windows open for its events, up to ``lateness_s`` past their end.

>>> w = CountWindows(size=3)
>>> [win.events for t in range(7) for win in w.add(f"e{t}", float(t))]
[['e0', 'e1', 'e2'], ['e3', 'e4', 'e5']]
>>> w.flush().meta()["window_start"]
'1970-01-01T00:00:06+00:00'
>>> tw = TimeWindows(width_s=60)
>>> closed = [win for t in (5, 30, 61, 200) for win in tw.add(t, float(t))]
>>> [(c.window_start, c.window_end, c.events) for c in closed]
[(0.0, 60.0, [5, 30]), (60.0, 120.0, [61])]

Two partitions, ``a`` ahead of ``b``: the first window waits for ``b`` to pass its end (a
source counts from its first event on).

>>> tw = TimeWindows(width_s=60, lateness_s=120, source=lambda e: e[0])
>>> events = [("a", 5), ("b", 10), ("a", 70), ("b", 50), ("b", 65)]
>>> [w.events for e in events for w in tw.add(e, e[1])]
[[('a', 5), ('b', 10), ('b', 50)]]

A source not heard from yet cannot hold a window, so at a fresh start ``a``'s backlog would
close the windows ``b`` has events for. With ``sources`` (how many there are, e.g. the
partition count), fewer known sources fall back on the lateness alone:

>>> events = [("a", 5), ("a", 70), ("a", 110), ("b", 10), ("b", 65)]
>>> for n in (0, 2):
...     tw = TimeWindows(width_s=60, lateness_s=60, source=lambda e: e[0], sources=n)
...     print([w.events for e in events for w in tw.add(e, e[1])], tw.late)
[[('a', 5)]] 1
[[('a', 5), ('b', 10)]] 0

A time window holds as many events as event time brings, so at a high rate it keeps a uniform
sample of at most ``max_rows`` of them (reservoir sampling, seeded: a replay samples the same),
its exact count (:attr:`Window.n`) and, per key of ``tally`` (a function of an event), exact
counts over all of its events (:attr:`Window.counts`): what must be counted exactly (volumes,
data-quality tallies) is, whatever is tested on a sample (distributions, rates) is sampled.

>>> tw = TimeWindows(width_s=60, max_rows=2, tally=lambda e: [e % 2])
>>> win = [w for t in range(10) for w in tw.add(t, float(t))] + tw.flush()
>>> win[0].n, len(win[0].events), dict(win[0].counts)
(10, 2, {0: 5, 1: 5})

A day's window can hold tens of thousands of events, which a snapshot pickles every few
seconds: with ``pack`` and ``unpack`` it keeps each event as ``pack`` makes it (e.g. bytes, a
fraction of a dict's memory and far quicker to pickle) and hands them back unpacked when it
closes; ``tally`` and ``source`` see the event as it came. A closed window's events stay
packed too (:class:`Unpacked`): each is unpacked as it is read, so a day's 50,000 rows are never
all dicts at once (~97 MB where the packed rows take ~21).

>>> tw = TimeWindows(width_s=60, pack=str, unpack=int)
>>> _ = tw.add(7, 1.0)
>>> tw._open[0].items, tw._open[0].times, tw.flush()[0].events
(['7'], array('d', [1.0]), Unpacked([7]))
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from riverwatch.monitors.lazy import Unpacked

T = TypeVar("T")


def iso(epoch: float) -> str:
    """An epoch-seconds time as an ISO 8601 UTC string (how alerts carry window ranges)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True)
class Window(Generic[T]):
    """A closed window: its events and the event-time range ``[window_start, window_end]``.

    For time windows the range is the window's bounds (end excluded); for count windows it is
    the earliest and latest event time inside.
    """

    kind: Literal["count", "time"]
    index: int
    window_start: float
    window_end: float
    # all of them, or a uniform sample (a time window with ``max_rows``); a time window's
    # packed events (``pack``) are unpacked as they are read (:class:`Unpacked`)
    events: Sequence[T]
    times: list[float]
    total: int | None = None  # the events that fell in it (None: ``len(events)``)
    counts: Mapping[Any, int] | None = None  # exact counts per key of ``tally``

    @property
    def n(self) -> int:
        """Number of events in the window (all of them, when :attr:`events` is a sample)."""
        return len(self.events) if self.total is None else self.total

    @property
    def sampled(self) -> bool:
        """Whether :attr:`events` is a sample of fewer than :attr:`n` events."""
        return len(self.events) < self.n

    def meta(self) -> dict[str, Any]:
        """The window's description for ``Alert.details`` (ISO times, JSON-ready)."""
        out: dict[str, Any] = {
            "window_kind": self.kind,
            "window_index": self.index,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "n": self.n,
        }
        if self.sampled:  # the events are a sample of that many
            out["sampled"] = len(self.events)
        return out


class CountWindows(Generic[T]):
    """Windows of ``size`` events, a new one every ``step`` events (``step=size``: tumbling).

    With ``step < size`` the windows overlap (the last ``size`` events, every ``step``).
    """

    def __init__(self, size: int, step: int | None = None):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        step = size if step is None else step
        if not 1 <= step <= size:
            raise ValueError(f"step must be in [1, size], got {step}")
        self.size = size
        self.step = step
        self._buf: deque[tuple[float, T]] = deque(maxlen=size)
        self._since = 0  # events added since the last emitted window
        self._index = 0

    def add(self, event: T, time: float) -> list[Window[T]]:
        """Add one event at event time ``time``; return the window it closes, if any."""
        self._buf.append((time, event))
        self._since += 1
        if len(self._buf) == self.size and self._since >= self.step:
            return [self._emit()]
        return []

    def flush(self) -> Window[T] | None:
        """Close the events not yet emitted as a (short) window; None when there are none."""
        if self._since == 0 or not self._buf:
            return None
        return self._emit()

    def _emit(self) -> Window[T]:
        items = list(self._buf)
        if self.step == self.size:
            self._buf.clear()
        times = [t for t, _ in items]
        win = Window("count", self._index, min(times), max(times), [e for _, e in items], times)
        self._index += 1
        self._since = 0
        return win


@dataclass
class _Slot(Generic[T]):
    """An open time window: its events (or their sample), how many came, the exact tallies.

    The events' times are apart, in one array of doubles, not a ``(time, event)`` pair each:
    a pair and its float were 80 of a day window's ~420 bytes a row.
    """

    items: list[Any] = field(default_factory=list)  # the events (as ``pack`` made them)
    times: array[float] = field(default_factory=lambda: array("d"))  # items[i]'s event time
    seen: int = 0
    counts: Counter[Hashable] = field(default_factory=Counter)


class TimeWindows(Generic[T]):
    """Tumbling windows of ``width_s`` seconds of event time, aligned on the epoch.

    A window ``[start, start + width_s)`` closes (or on :meth:`flush`) once the watermark
    reaches its end: the newest event time minus ``lateness_s`` (events may come that much
    out of order), or with ``source`` (a function of an event: the ordered input it came by,
    e.g. a partition) the oldest of the sources' newest event times if that is later. So a
    window waits for every source to pass its end, at most until the newest event is
    ``lateness_s`` past it; a source more than ``lateness_s + width_s`` behind the newest event
    (stopped, or moved to another consumer) is forgotten until its next event, so that it
    does not hold every later window that long. With ``sources`` > 0, the number of sources
    there are, the sources decide only once that many are known (before, or with one
    forgotten, the lateness alone does): a source not heard from yet (a fresh start) cannot
    hold a window, but must not be outrun either; a count above the real one only makes the
    windows wait for the lateness. At most ``lateness_s / width_s + 2`` windows
    stay open for a lagging source. Events older than the oldest open window
    are counted in ``late`` and dropped. At most ``max_open`` windows are kept open; beyond
    that the oldest is closed early. With ``max_rows`` (0: no bound) a window keeps a uniform
    sample of that many events (Algorithm R), its exact count and the exact counts of
    ``tally``'s keys; with ``pack`` and ``unpack``, the events it keeps packed (see the
    module).
    """

    def __init__(
        self,
        width_s: float,
        lateness_s: float = 0.0,
        max_open: int = 1000,
        *,
        max_rows: int = 0,
        tally: Callable[[T], Iterable[Hashable]] | None = None,
        source: Callable[[T], Hashable] | None = None,
        sources: int = 0,
        seed: int = 0,
        pack: Callable[[T], Any] | None = None,
        unpack: Callable[[Any], T] | None = None,
    ):
        if not width_s > 0 or lateness_s < 0 or max_rows < 0:
            raise ValueError("width_s must be > 0, lateness_s >= 0 and max_rows >= 0")
        self.width_s = width_s
        self.lateness_s = lateness_s
        self.max_open = max_open
        self.max_rows = max_rows
        self.tally = tally
        self.source = source
        self.sources = sources
        self.pack, self.unpack = pack, unpack
        self._rng = random.Random(seed)
        self.late = 0
        self._open: dict[int, _Slot[T]] = {}
        self._closed_below = -math.inf  # slot numbers below this are closed
        self._newest = -math.inf  # the newest event time seen
        self._sources: dict[Hashable, float] = {}  # each source's newest event time

    def add(self, event: T, time: float) -> list[Window[T]]:
        """Add one event; return the windows (oldest first) that its time closes."""
        slot = math.floor(time / self.width_s)
        if self.source is not None:
            src = self.source(event)
            self._sources[src] = max(self._sources.get(src, -math.inf), time)
        self._newest = max(self._newest, time)
        if slot < self._closed_below:
            self.late += 1
            return []
        if (open_ := self._open.get(slot)) is None:
            open_ = self._open[slot] = _Slot()
        self._keep(open_, event, time)
        mark = self.watermark
        ready = [s for s in self._open if (s + 1) * self.width_s <= mark]
        while len(self._open) - len(ready) > self.max_open:
            ready.append(min(s for s in self._open if s not in ready))
        return [self._close(s) for s in sorted(ready)]

    @property
    def watermark(self) -> float:
        """The event time up to which the windows are complete (see the class)."""
        floor = self._newest - self.lateness_s
        if self.source is None:
            return floor
        for src in [s for s, t in self._sources.items() if t < floor - self.width_s]:
            del self._sources[src]  # silent for long: forgotten (back with its next event)
        if len(self._sources) < self.sources:
            return floor  # one not heard from (yet): it may still send events for any window
        return max(floor, min(self._sources.values(), default=floor))

    def flush(self) -> list[Window[T]]:
        """Close every open window (end of stream or shutdown)."""
        return [self._close(s) for s in sorted(self._open)]

    def _keep(self, slot: _Slot[T], event: T, time: float) -> None:
        slot.seen += 1
        if self.tally is not None:
            slot.counts.update(self.tally(event))
        if not self.max_rows or len(slot.items) < self.max_rows:
            slot.items.append(self.pack(event) if self.pack else event)
            slot.times.append(time)
        elif (j := self._rng.randrange(slot.seen)) < self.max_rows:  # each kept w.p. max/seen
            slot.items[j] = self.pack(event) if self.pack else event
            slot.times[j] = time

    @property
    def open_windows(self) -> list[tuple[float, int]]:
        """``(window_start, events)`` of each open window (all that came, sampled or not)."""
        return [(float(s * self.width_s), v.seen) for s, v in sorted(self._open.items())]

    def _close(self, slot: int) -> Window[T]:
        open_ = self._open.pop(slot)
        self._closed_below = max(self._closed_below, slot + 1)
        start, items, unpack = float(slot * self.width_s), open_.items, self.unpack
        return Window(
            "time", slot, start, start + self.width_s,
            Unpacked(items, unpack) if unpack else items,
            open_.times.tolist(), total=open_.seen,
            counts=open_.counts if self.tally is not None else None,
        )  # fmt: skip
