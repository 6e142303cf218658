"""Event-time and count windows (riverwatch.monitors.windows)."""

from __future__ import annotations

import pytest

from riverwatch.monitors.windows import CountWindows, TimeWindows

DAY = 86_400.0


def test_count_windows_tumble_and_carry_their_event_time_range() -> None:
    w = CountWindows[int](size=4)
    closed = [win for i in range(10) for win in w.add(i, 100.0 + i)]
    assert [c.events for c in closed] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [(c.window_start, c.window_end, c.index) for c in closed] == [
        (100.0, 103.0, 0),
        (104.0, 107.0, 1),
    ]
    rest = w.flush()
    assert rest is not None and rest.events == [8, 9] and rest.index == 2
    assert w.flush() is None
    assert closed[0].meta()["window_end"] == "1970-01-01T00:01:43+00:00"


def test_count_windows_slide_by_step() -> None:
    w = CountWindows[int](size=4, step=2)
    closed = [win.events for i in range(8) for win in w.add(i, float(i))]
    assert closed == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert w.flush() is None  # nothing new since the last window
    with pytest.raises(ValueError):
        CountWindows[int](size=3, step=4)


def test_time_windows_close_on_event_time_with_lateness() -> None:
    w = TimeWindows[str](width_s=60, lateness_s=30)
    assert w.add("a", 10) == [] and w.add("b", 70) == []
    assert w.add("c", 80) == []  # 80 < 60 + 30: the first window still accepts late events
    assert w.add("late-but-ok", 50) == []
    closed = w.add("d", 95)
    assert [(c.window_start, c.window_end, c.events) for c in closed] == [
        (0.0, 60.0, ["a", "late-but-ok"])
    ]
    assert w.add("too-late", 5) == [] and w.late == 1
    rest = w.flush()
    assert [(c.window_start, c.events) for c in rest] == [(60.0, ["b", "c", "d"])]
    assert rest[0].times == [70.0, 80.0, 95.0]


def test_time_windows_skip_empty_gaps_and_bound_open_windows() -> None:
    w = TimeWindows[int](width_s=10, lateness_s=1000, max_open=2)
    out = [c for t in (1, 15, 25, 35) for c in w.add(t, float(t))]
    assert [c.window_start for c in out] == [0.0, 10.0]  # closed early: at most 2 stay open
    assert w.open_windows == [(20.0, 1), (30.0, 1)]


def test_time_windows_wait_for_every_source_up_to_the_lateness() -> None:
    """Partition ``a`` runs ahead: a window waits for ``b`` and ``c`` (their events are not
    late) until each passes its end, or the newest event is ``lateness_s`` past it (``c``
    stopped); a source more than ``lateness_s + width_s`` behind holds nothing more."""
    w = TimeWindows[tuple[str, float]](width_s=10, lateness_s=20, source=lambda e: e[0])

    def add(src: str, t: float) -> list[tuple[float, int]]:
        return [(c.window_start, c.n) for c in w.add((src, t), t)]

    for src, t in [("a", 1), ("b", 2), ("c", 3), ("a", 12), ("a", 18), ("b", 9), ("b", 14)]:
        assert add(src, t) == []
    assert w.watermark == 3.0 and w.late == 0  # c: 3, b: 14, a: 18
    assert add("c", 11) == [(0.0, 4)]  # every source past 10
    assert add("b", 25) == [] and add("a", 30) == []  # c (11) holds [10, 20) ...
    assert add("a", 40) == [(10.0, 4)]  # ... until the newest event is 20 past its end
    assert add("a", 52) == [(20.0, 1)]  # c, 41 behind (> 20 + 10), is forgotten; b is at 25
    assert add("b", 45) == [(30.0, 1)]
    assert add("c", 12) == [] and w.late == 1  # back, too late for [10, 20) ...
    assert add("b", 51) == [(40.0, 2)]  # ... and still too far behind to hold [40, 50)


def test_time_windows_without_lateness_close_on_the_newest_event_with_or_without_sources() -> None:
    for source in (None, lambda e: e[0]):
        w = TimeWindows[tuple[str, float]](width_s=10, source=source)
        feed = [("a", 1.0), ("b", 2.0), ("a", 11.0), ("b", 5.0)]
        closed = [c.events for e in feed for c in w.add(e, e[1])]
        assert closed == [[("a", 1.0), ("b", 2.0)]] and w.late == 1
