"""The scorer's hot path in process: CPU per event of ``Scorer.process`` on a real Valkey.

No broker: batches of raw ``transactions`` records go straight to the handler the scoring loop
calls, so the figures are the handler's own thread CPU time (``time.thread_time``), stable
under the load of other processes (wall times are not). Two measurements:

1. live traffic: batches of RW_HOT_BATCH over 5000 cards and 10000 terminals, event time now;
2. history: entities whose counters hold 1 day, then 30 days of hourly buckets (written
   straight into Valkey), scored at the end of that history: the per-event cost must not
   grow with an entity's history.

Also the collector's pauses during the live run (gc callbacks), and Valkey's own CPU per event
(``INFO cpu`` before and after, the server's user + system time: the feature store sums windows
in scripts there). The history entities are written as buckets only (the layout before day
totals existed) and each gets one transaction first, unmeasured apart: that first read is
where a store migrates old state. RW_HOT_EVENTS (20000) events per measurement,
RW_HOT_REPEATS (3), RW_HOT_PARTS (``live,history``; ``backfill``: event times spread over the
30 days before now, in order, as bench.pipeline's backfill), RW_HOT_CHAMPION (0: no batch
champion, the online model alone; k: one of k members, bench/hotpath_champion.py).

The workers' metrics are kept as ``riverwatch up`` keeps them, in multiprocess mode (a
temporary PROMETHEUS_MULTIPROC_DIR unless one is set; RW_HOT_PLAIN_METRICS=1 for a process's
own registry): there every increment locks and writes a memory-mapped file, so per-event
metric calls cost several times what they cost in a plain process (an observe 1.5 us against
0.7 us).

``--compare REF`` (``make bench-hotpath-history``): the history measurement of the code at git
``REF`` (exported to a temporary directory) and of this tree, alternately in one run,
RW_HOT_REPEATS rounds of one repeat each; this file drives both (it only uses what both
have: ``Scorer.process`` and the store's Redis client).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import hotpath_champion
from bench.alternate import main_of
from bench.hotpath_report import KINDS, report
from bench.openloop import payloads
from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FeatureSpec
from riverwatch.models.serving import ModelSet
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.records import Record
from riverwatch.streams.scorer import Scorer

EVENTS = int(os.environ.get("RW_HOT_EVENTS", "20000"))
BATCH = int(os.environ.get("RW_HOT_BATCH", "500"))
REPEATS = int(os.environ.get("RW_HOT_REPEATS", "3"))
PARTS = os.environ.get("RW_HOT_PARTS", "live,history").split(",")
HIST_ENTITIES = 200
TERMINAL_AT_QUERY = os.environ.get("RW_HOT_TERMINAL_AT_QUERY") == "1"
PER_DAY = int(os.environ.get("RW_HOT_PER_DAY", "0"))  # buckets with data a day (0: every hour)
CHAMPION = int(os.environ.get("RW_HOT_CHAMPION", "0"))  # members of a batch champion (0: none)


def scorer(settings: Settings) -> Scorer:
    """A Scorer wired as streams.app wires it."""
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    features = FeatureSet(settings.feature_attributes)
    models = ModelSet(
        SnapshotStore(r, names), Registry(r, names, settings.data_dir), 1.0, features.names
    )
    return Scorer(
        Context.from_settings(settings),
        RedisFeatureStore(r, names, spec.retention_s),
        models,
        "bench:0",
    )


def records(msgs: list[tuple[bytes, bytes]], topic: str) -> list[Record]:
    """Raw records as the scoring loop hands them over."""
    now = int(time.time() * 1000)
    return [Record(topic, 0, i, k, v, now) for i, (k, v) in enumerate(msgs)]


def redis_cpu(sc: Scorer) -> float:
    """Valkey's CPU seconds so far (user + system, all its threads)."""
    info = sc.store.r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def server_counts(sc: Scorer) -> dict[str, list[float]]:
    """Valkey's counters so far: per command, calls and microseconds (those its scripts call
    included; not INFO); and ``net``, the bytes it received and sent."""
    r = sc.store.r
    out = {
        k.removeprefix("cmdstat_"): [float(v["calls"]), float(v["usec"])]
        for k, v in r.info("commandstats").items()
        if k != "cmdstat_info"
    }
    net = r.info("stats")
    out["net"] = [float(net["total_net_input_bytes"]), float(net["total_net_output_bytes"])]
    return out


def cpu_per_event(
    sc: Scorer, recs: list[Record]
) -> tuple[float, float, list[float], dict[str, list[float]]]:
    """Microseconds per event of ``sc.process`` over ``recs``, batch by batch: the handler's
    thread CPU, and Valkey's CPU; per event what the batches sent (:data:`IO`), and per
    Valkey command its calls and microseconds."""
    before, r0 = server_counts(sc), redis_cpu(sc)
    outs = []
    t0 = time.thread_time()
    for i in range(0, len(recs), BATCH):
        outs.append(sc.process(recs[i : i + BATCH]))
    t1 = time.thread_time()
    valkey = 1e6 * (redis_cpu(sc) - r0) / len(recs)
    after, n = server_counts(sc), len(recs)
    cmds = {
        c: [(b - a) / n for a, b in zip(before.get(c, [0.0, 0.0]), v, strict=True)]
        for c, v in after.items()
    }
    produced = [o for batch in outs for o in batch]
    net = cmds.pop("net")
    io = [
        len(produced) / n,
        sum(len(o.key or b"") + len(o.value) for o in produced) / n,
        sum(v[0] for v in cmds.values()),
        cmds.get("evalsha", [0.0])[0] * BATCH,
        *net,
    ]
    return 1e6 * (t1 - t0) / n, valkey, io, {c: v for c, v in cmds.items() if v[0]}


def seed_history(sc: Scorer, prefix: str, days: int, end: float) -> None:
    """Hourly counters over ``days`` before ``end`` for HIST_ENTITIES cards and terminals, in
    every hour (RW_HOT_PER_DAY=k: one payment in each of about k random hours a day and the
    last: a card's few payments a day); a terminal's before ``end`` less the label delay with
    RW_HOT_TERMINAL_AT_QUERY=1: where its transactions' queries read, so that one day of history
    is a day in its windows, not none."""
    r, names, spec = sc.store.r, sc.names, sc.spec
    p = r.pipeline(transaction=False)
    for kind in ("card", "terminal"):
        at = end - (kind == "terminal" and TERMINAL_AT_QUERY) * spec.delay_buckets * spec.bucket_s
        last = spec.bucket(at)
        every = range(last - days * spec.per_day + 1, last + 1)
        rng = np.random.default_rng(days)
        for i in range(HIST_ENTITIES):
            buckets = every
            if PER_DAY:  # a few payments a day (a card's), each day in other hours
                buckets = [b for b in every if b == last or rng.random() < PER_DAY / spec.per_day]
            n, v = (1, 30.5) if PER_DAY else (3, 90.5)  # (1: fewer than SUF_N a day, feature_read)
            fields = {f"n:{b}": n for b in buckets} | {f"v:{b}": v for b in buckets}
            p.hset(names.entity(kind, f"{prefix}{kind[0]}{i}"), mapping=fields)
    p.execute()


def history_events(
    prefix: str, n: int, end: float, seed: int, tag: str, pairs: bool = False, step_s: float = 0.0
) -> list[tuple[bytes, bytes]]:
    """n transactions on the seeded entities at ``end``, or (``step_s``) each round of
    HIST_ENTITIES transactions ``step_s`` later than the one before (``pairs``: card i with
    terminal i, each once, for the first read of every entity)."""
    rng = np.random.default_rng(seed)
    if pairs:
        ids = np.repeat(np.arange(n)[:, None], 2, axis=1)
    else:
        ids = rng.integers(0, HIST_ENTITIES, (n, 2))
    out = []
    for i, (c, t) in enumerate(ids):
        at = end + step_s * (i // HIST_ENTITIES)
        body = (
            f'{{"event_id":"{prefix}e{tag}{i}","timestamp":{at},'
            f'"card_id":"{prefix}c{c}","terminal_id":"{prefix}t{t}","amount":{10 + i % 90}}}'
        )
        out.append((f"{prefix}c{c}".encode(), body.encode()))
    return out


def measure() -> dict[str, list[list[float]]]:
    """Per measurement and repeat ``[scorer us, valkey us]`` per event, and the GC pauses."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-hot-"))
    res: dict[str, list[list[float]]] = {"live": [], "live io": [], "gc_pauses_s": []}
    for days in (1, 30):
        for k in KINDS:
            res[k.format(days)] = []
    start: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            start.append(time.perf_counter())
        elif start:
            res["gc_pauses_s"].append([time.perf_counter() - start.pop()])

    with EmbeddedStack(tmp, kafka=False) as stack:
        s = Settings(redis_url=stack.redis_url, data_dir=tmp, topic_prefix="hot-")
        sc = scorer(s)
        if CHAMPION:
            hotpath_champion.install(sc, s, CHAMPION)
        topic = sc.names.topic("transactions")
        sc.process(records(payloads(BATCH, np.full(BATCH, time.time()), 0, "w-"), topic))
        try:  # as the worker does once started (absent from older code: compare with it)
            from riverwatch.streams.batching import tune_gc  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            tune_gc = None
        if tune_gc is not None and not os.environ.get("RW_HOT_NO_GC_TUNING"):
            tune_gc()
        for rep in range(REPEATS):
            if "live" in PARTS:
                msgs = payloads(EVENTS, np.full(EVENTS, time.time()), rep + 1, f"l{rep}-")
                gc.callbacks.append(on_gc)
                cpu, valkey, io, cmds = cpu_per_event(sc, records(msgs, topic))
                gc.callbacks.remove(on_gc)
                res["live"].append([cpu, valkey])
                res["live io"].append(io)
                for c, v in cmds.items():  # per command: calls and microseconds per event
                    res.setdefault(f"valkey {c}", []).append(v)
            if "backfill" in PARTS:  # event times over the 30 days before now, in order
                now = time.time()
                epochs = np.linspace(now - 30 * 86_400, now, EVENTS)
                msgs = payloads(EVENTS, epochs, rep + 1, f"b{rep}-")
                res.setdefault("backfill", []).append(cpu_per_event(sc, records(msgs, topic))[:2])
            if "history" not in PARTS:
                continue
            # within the day before now whose queries the scorer caches (Scorer._score); the
            # new-hour rounds run up to 14 h ahead of it (RIVERWATCH_MAX_FUTURE_SKEW_S: a day)
            end = time.time() - 12 * 3600
            for days in (1, 30):
                prefix = f"h{rep}d{days}-"
                seed_history(sc, prefix, days, end)
                first = history_events(prefix, HIST_ENTITIES, end, rep, "f", pairs=True)
                res[f"first read, {days}d"].append(cpu_per_event(sc, records(first, topic))[:2])
                evs = history_events(prefix, EVENTS // 4, end, rep, "s")
                res[f"history {days}d"].append(cpu_per_event(sc, records(evs, topic))[:2])
                evs = history_events(prefix, EVENTS // 4, end + 3600, rep, "n", step_s=3600)
                res[f"history {days}d, new hour"].append(cpu_per_event(sc, records(evs, topic))[:2])
    return res


def main() -> None:
    """Print per-event CPU for live traffic and for entities with 1 and 30 days of history
    (``--compare REF``: REF's and this tree's, the history part unless RW_HOT_PARTS says)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not os.environ.get(
        "RW_HOT_PLAIN_METRICS"
    ):
        # prometheus-client picks its value class when imported (above): start again with it set
        prom = tempfile.mkdtemp(prefix="riverwatch-hot-prom-")
        argv = [sys.executable, "-m", "bench.hotpath", *sys.argv[1:]]
        os.execve(sys.executable, argv, {**os.environ, "PROMETHEUS_MULTIPROC_DIR": prom})

    def title(what: str) -> str:
        return (
            f"\nriverwatch scorer hot path ({what or 'in process, real Valkey'}; batches of "
            f"{BATCH}, load average {os.getloadavg()[0]:.2f})"
        )

    def report_all(res: dict[str, list[list[float]]]) -> None:
        report(res)
        if pauses := [p[0] for p in res["gc_pauses_s"]]:
            print(f"  GC pauses in the live runs: {len(pauses)}, total "
                  f"{1000 * sum(pauses):.0f} ms, max {1000 * max(pauses):.1f} ms")  # fmt: skip

    parts = os.environ.get("RW_HOT_PARTS", "history")
    compare_env = {"RW_HOT_REPEATS": "1", "RW_HOT_PARTS": parts}
    main_of(measure, report_all, "RW_HOT_JSON", title, compare_env, REPEATS, __file__)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
