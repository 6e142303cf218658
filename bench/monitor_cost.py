"""The monitor's cost per score in process: ``MonitorHandler.process`` on a real Valkey.

No broker: a scorer (``bench.hotpath.scorer``, wired as the worker wires it) scores live
transactions into Valkey (feature rows, scores), and its ``scores`` records go straight to the
handler the monitor's batch loop calls, in batches of the loop's size
(``streams.monitor.agents.BATCH_MAX``). The figures are the handler's thread CPU time per
score (stable under other processes' load, unlike wall times) and Valkey's CPU per score; a
first round warms the monitor up and is not counted. A snapshot of the windows is timed apart
(the monitor writes one at most every ``RIVERWATCH_MONITOR_SNAPSHOT_S`` seconds; how often
depends on wall time, not on the number of scores): its thread CPU, size and the most memory
it holds at once (tracemalloc). Last, today's time window (every round's scores, up to
``RIVERWATCH_MONITOR_WINDOW_ROWS``, 50,000, of them) is closed and judged as at the end of a
day: the memory its rows take before, the most that holds at once and its thread CPU (the
helper's RSS peaks); and a new champion's reference made from 190,000 training rows: the most
memory it holds at once.

RW_MON_EVENTS (20000) scores per round, RW_MON_REPEATS (3) counted rounds; the collector tuned
as a worker tunes it when its loop starts (``streams.inflight.tune_gc``), or left at Python's
defaults with RW_MON_GC=default (as the helper ran before it tuned it).
``--compare REF``: the same, of the code at git ``REF`` (exported to a temporary directory)
and of this tree, alternately, RW_MON_REPEATS rounds of one each; this file drives both.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from bench.alternate import main_of
from bench.hotpath import records, scorer
from bench.openloop import payloads
from riverwatch.context import Context
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.monitors.windows import TimeWindows
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.streams.inflight import tune_gc
from riverwatch.streams.monitor.agents import BATCH_MAX, MonitorHandler
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Record

EVENTS = int(os.environ.get("RW_MON_EVENTS", "20000"))
REPEATS = int(os.environ.get("RW_MON_REPEATS", "3"))
TUNE_GC = os.environ.get("RW_MON_GC", "tuned") != "default"


def scored(sc: Any, n: int, seed: int, prefix: str) -> list[Record]:
    """``n`` live transactions scored by ``sc`` (rows and scores land in Valkey): their
    ``scores`` records, as the monitor's loop hands them over."""
    topic, t_scores = sc.names.topic("transactions"), sc.names.topic("scores")
    msgs = payloads(n, np.full(n, time.time()), seed, prefix)
    outs = []
    for i in range(0, n, 500):
        outs += [o for o in sc.process(records(msgs[i : i + 500], topic)) if o.topic == t_scores]
    now = int(time.time() * 1000)
    return [Record(t_scores, 0, seed * n + i, o.key, o.value, now) for i, o in enumerate(outs)]


def measure() -> dict[str, list[float]]:
    """Per counted round: handler us and Valkey us per score; snapshot ms and KB."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-mon-"))
    res: dict[str, list[float]] = {
        "handler_us": [], "valkey_us": [], "snap_ms": [], "snap_kb": [], "snap_peak_mib": [],
    }  # fmt: skip
    with EmbeddedStack(tmp, kafka=False) as stack:
        s = Settings(redis_url=stack.redis_url, data_dir=tmp, topic_prefix="mon-")
        sc = scorer(s)
        ctx = Context.from_settings(s)
        r = redis_client(ctx.redis_config)

        def make() -> Monitor:
            return Monitor(ctx, r, "bench")

        handler = MonitorHandler(ctx, make, cast(Any, None), "bench")
        if TUNE_GC:  # as the worker does when its loop starts (streams.runtime.loop_service)
            tune_gc()
        for rnd in range(REPEATS + 1):
            recs = scored(sc, EVENTS, rnd + 1, f"m{rnd}-")
            info0 = r.info("cpu")
            t0 = time.thread_time()
            for i in range(0, len(recs), BATCH_MAX):
                handler.process(recs[i : i + BATCH_MAX])
            t1 = time.thread_time()
            info1 = r.info("cpu")
            if rnd == 0:  # warm-up: the monitor's first windows, reference, imports
                continue
            valkey = sum(
                float(info1[k]) - float(info0[k]) for k in ("used_cpu_user", "used_cpu_sys")
            )
            res["handler_us"].append(1e6 * (t1 - t0) / len(recs))
            res["valkey_us"].append(1e6 * valkey / len(recs))
            m = handler.monitor
            assert m is not None
            t0 = time.thread_time()
            blob = m.core.snapshot("scores", {})
            res["snap_ms"].append(1e3 * (time.thread_time() - t0))
            res["snap_kb"].append(len(blob) / 1024)
            del blob
            res["snap_peak_mib"].append(traced_peak(lambda m=m: m.core.snapshot("scores", {})))
        assert handler.monitor is not None
        for k, v in close_day(handler.monitor.core).items():
            res[k] = [v]
        res["ref_peak_mib"] = [champion_reference(ctx)]
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def traced_peak(work: Callable[[], object]) -> float:
    """The most memory ``work`` held at once (tracemalloc, MiB): Python's allocations,
    where the RSS of the process would also count what the rounds before left."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def champion_reference(ctx: Context, rows: int = 190_000) -> float:
    """The most memory a new champion's reference holds at once (tracemalloc, MiB): its
    training window (``rows`` offline-store rows, about 21 days under the trainer's
    RIVERWATCH_TRAIN_MAX_ROWS of 250,000 with a 7-day hold-out) made into the monitor's
    reference as the runner does (``reference_rows``, then ``set_reference``); the frame
    the offline store reads is not counted."""
    from riverwatch.monitors.core import MonitorCore
    from riverwatch.streams.monitor.data import reference_rows

    rng = np.random.default_rng(0)
    names = list(ctx.features.names)
    df = pd.DataFrame(rng.lognormal(0, 0.5, (rows, len(names))), columns=names).assign(
        score=rng.beta(1, 12, rows),
        groups='{"age_band":"25-34","region":"north"}',
        epoch=np.sort(rng.uniform(0, 21 * 86_400, rows)),
        label=(rng.random(rows) < 0.01).astype(int),
    )
    core = MonitorCore(ctx.monitor_core(), ctx.concept_monitor())

    def reference() -> None:
        assert core.set_reference(reference_rows(df, names), "champion bench")

    return traced_peak(reference)


def close_day(core: Any) -> dict[str, float]:
    """Today's time window (every round's scores: up to ``window_rows`` of them) closed and
    judged as the monitor does at the end of the day, twice from the same rows: once for the
    most memory it held (tracemalloc slows allocation, so apart) and once for its thread CPU.
    The core is made ready first (a reference of the window's first 5,000 rows), so the
    window is judged in full (drift, prediction, volume, fairness, estimate, quality)."""
    tw = next(w for w in core.windows if isinstance(w, TimeWindows))
    ((slot, open_),) = tw._open.items()
    items = list(open_.items)
    # what the open window's rows take: its lists and arrays and what the lists hold (a row,
    # or, before the times were kept apart, a (time, row) pair); either layout, for --compare
    held = 0
    for v in vars(open_).values():
        if isinstance(v, array):
            held += sys.getsizeof(v)
        elif isinstance(v, list):
            held += sys.getsizeof(v) + sum(map(sys.getsizeof, v))
            held += sum(sys.getsizeof(x) for it in v if isinstance(it, tuple) for x in it)
    kept = [it[1] if isinstance(it, tuple) else it for it in items[:5000]]
    core.first = None  # no warm-up cut: the reference is these rows
    ref = [tw.unpack(e) for e in kept] if tw.unpack else kept
    assert core.set_reference(ref, "bench", until=0.0)
    del ref

    def close() -> None:
        for win in tw.flush():
            core.window(win)

    peak = traced_peak(close)
    tw._open[slot] = open_  # the same rows again, for the timing
    tw._closed_below = slot
    t0 = time.thread_time()
    close()
    return {
        "close_rows": float(len(items)),
        "window_mib": held / 2**20,
        "close_peak_mib": peak,
        "close_ms": 1e3 * (time.thread_time() - t0),
    }


def report(res: dict[str, list[float]]) -> None:
    """One line per figure: median (min, max) over the rounds."""
    for key, what in (("handler_us", "monitor CPU per score, us"),
                      ("valkey_us", "Valkey CPU per score, us"),
                      ("snap_ms", "a scores snapshot, CPU ms"),
                      ("snap_kb", "a scores snapshot, KB"),
                      ("snap_peak_mib", "a snapshot's peak, MiB"),
                      ("close_rows", "day window closed: rows"),
                      ("window_mib", "its rows held, MiB"),
                      ("close_peak_mib", "closing it: peak, MiB"),
                      ("close_ms", "closing it: CPU ms"),
                      ("ref_peak_mib", "champion reference: peak, MiB")):  # fmt: skip
        v = res[key]
        print(
            f"  {what:<28} median {statistics.median(v):8.1f} (min {min(v):.1f}, max {max(v):.1f})"
        )


def main() -> None:
    """Print the monitor's cost per score (``--compare REF``: REF's and this tree's)."""

    def title(what: str) -> str:
        return (
            f"\nriverwatch monitor cost ({what or 'in process, real Valkey'}; batches of "
            f"{BATCH_MAX}, rounds of {EVENTS} scores, collector "
            f"{'tuned' if TUNE_GC else 'default'}, load average {os.getloadavg()[0]:.2f})"
        )

    compare_env = {"RW_MON_REPEATS": "1"}
    main_of(measure, report, "RW_MON_JSON", title, compare_env, REPEATS, __file__)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
