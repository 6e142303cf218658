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
    """Partition ``a`` runs ahead: the window waits for ``b`` (its events are not late),
    closes once ``b`` passes its end, and a source more than ``lateness_s`` behind the newest
    event holds nothing (``c`` stopped): at most lateness / width + 1 windows stay open."""
    w = TimeWindows[tuple[str, float]](width_s=10, lateness_s=20, source=lambda e: e[0])
    feed = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("a", 12.0), ("a", 18.0), ("b", 9.0)]
    assert [c for e in feed for c in w.add(e, e[1])] == [] and w.late == 0
    assert w.watermark == 3.0  # c: 3, b: 9, a: 18
    assert w.add(("b", 14.0), 14.0) == []
    assert [c.events for c in w.add(("c", 11.0), 11.0)] == [
        [("a", 1.0), ("b", 2.0), ("c", 3.0), ("b", 9.0)]
    ]
    # c stops; a goes on: the window [10, 20) waits until c is 20 s behind, then closes
    assert w.add(("b", 25.0), 25.0) == [] and w.add(("a", 30.0), 30.0) == []
    closed = w.add(("a", 31.5), 31.5)  # c (11) is now more than 20 behind 31.5
    assert [(c.window_start, c.n) for c in closed] == [(10.0, 4)]
    assert w.watermark == 25.0 and w.late == 0
    assert w.add(("c", 12.0), 12.0) == [] and w.late == 1  # back, too late for [10, 20)


def test_time_windows_without_lateness_close_on_the_newest_event_with_or_without_sources() -> None:
    for source in (None, lambda e: e[0]):
        w = TimeWindows[tuple[str, float]](width_s=10, source=source)
        feed = [("a", 1.0), ("b", 2.0), ("a", 11.0), ("b", 5.0)]
        closed = [c.events for e in feed for c in w.add(e, e[1])]
        assert closed == [[("a", 1.0), ("b", 2.0)]] and w.late == 1
