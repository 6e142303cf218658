"""The monitor's cost per score in process: ``MonitorHandler.process`` on a real Valkey.

No broker: a scorer (``bench.hotpath.scorer``, wired as the worker wires it) scores live
transactions into Valkey (feature rows, scores), and its ``scores`` records go straight to the
handler the monitor's batch loop calls, in batches of the loop's size
(``streams.monitor.agents.BATCH_MAX``). The figures are the handler's thread CPU time per
score (stable under other processes' load, unlike wall times) and Valkey's CPU per score; a
first round warms the monitor up and is not counted. A snapshot of the windows is timed apart
(the monitor writes one at most every ``RIVERWATCH_MONITOR_SNAPSHOT_S`` seconds; how often
depends on wall time, not on the number of scores): its thread CPU and size.

RW_MON_EVENTS (20000) scores per round, RW_MON_REPEATS (3) counted rounds; the collector tuned
as a worker tunes it when its loop starts (``streams.inflight.tune_gc``), or left at Python's
defaults with RW_MON_GC=default (as the helper ran before it tuned it).
``--compare REF``: the same, of the code at git ``REF`` (exported to a temporary directory)
and of this tree, alternately, RW_MON_REPEATS rounds of one each; this file drives both.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from bench.alternate import main_of
from bench.hotpath import records, scorer
from bench.openloop import payloads
from riverwatch.context import Context
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
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
    res: dict[str, list[float]] = {"handler_us": [], "valkey_us": [], "snap_ms": [], "snap_kb": []}
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
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def report(res: dict[str, list[float]]) -> None:
    """One line per figure: median (min, max) over the rounds."""
    for key, what in (("handler_us", "monitor CPU per score, us"),
                      ("valkey_us", "Valkey CPU per score, us"),
                      ("snap_ms", "a scores snapshot, CPU ms"),
                      ("snap_kb", "a scores snapshot, KB")):  # fmt: skip
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
