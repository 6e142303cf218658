"""Every worker that runs a batch loop (scorer, monitor, forecaster) tunes its collector when
the loop's service starts, before the loop's thread does (streams.runtime.loop_service).

The helper did not (only the scoring role asked for it): its monitor cost 81-89 us of CPU per
score at Python's default thresholds and 54 tuned (bench/monitor_cost.py)."""

import asyncio
import gc
from typing import Any

import faust

from riverwatch.streams import inflight
from riverwatch.streams.inflight import GC_THRESHOLDS, gc_pauses, watch_gc
from riverwatch.streams.runtime import loop_service


class _Loop:
    def __init__(self) -> None:
        self.thresholds: list[tuple[int, ...]] = []

    def start(self, on_crash: Any) -> None:
        self.thresholds.append(gc.get_threshold())

    def stop(self, timeout: float = 15.0) -> None:
        pass


def test_the_loop_service_tunes_the_collector_before_the_loop_starts() -> None:
    before = gc.get_threshold()
    app = faust.App("gc-tuning", broker="memory://", store="memory://")
    loop = _Loop()
    try:
        gc.set_threshold(700, 10, 10)  # Python's defaults
        loop_service(app, loop, lambda exc: None)  # type: ignore[arg-type]
        (service,) = app._extra_services
        asyncio.run(service(loop=None).on_start())
        assert loop.thresholds == [GC_THRESHOLDS]
        assert inflight._on_gc in gc.callbacks  # and its collections are timed
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        gc.callbacks.remove(inflight._on_gc)


def test_collections_are_timed_once_each_and_taken_once() -> None:
    try:
        watch_gc()
        watch_gc()  # once, however often called
        gc_pauses()
        gc.collect()
        gc.collect(0)
        got = gc_pauses()
        gens = [g for g, _ in got]
        assert gens.count(2) == 1 and gens[-1] == 0, gens
        assert all(0 <= s < 5 for _, s in got)
        assert gc_pauses() == []
    finally:
        gc.callbacks.remove(inflight._on_gc)
        gc_pauses()
    gc.collect()
    assert gc_pauses() == []  # no longer watched
