"""The scorer's hot path in process: CPU per event of ``Scorer.process`` on a real Valkey.

No broker: batches of raw ``transactions`` records go straight to the handler the scoring loop
calls, so the figures are the handler's own thread CPU time (``time.thread_time``), stable
under the load of other processes (wall times are not). Two measurements:

1. live traffic: batches of RW_HOT_BATCH over 5000 cards and 10000 terminals, event time now;
2. history: entities whose counters hold 1 day, then 30 days of hourly buckets (written
   straight into Valkey), scored at the end of that history: the per-event cost must not
   grow with an entity's history.

Also the collector's pauses during the live run (gc callbacks). RW_HOT_EVENTS (20000) events
per measurement, RW_HOT_REPEATS (3).
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.openloop import payloads
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import FeatureSet, FeatureSpec
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
HIST_ENTITIES = 200


def scorer(settings: Settings) -> Scorer:
    """A Scorer wired as streams.app wires it."""
    names = Names(settings.topic_prefix)
    r = redis_client(settings)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    features = FeatureSet.parse(settings.feature_attributes)
    models = ModelSet(
        SnapshotStore(r, names), Registry(r, names, settings.data_dir), 1.0, features.names
    )
    return Scorer(settings, RedisFeatureStore(r, names, spec.retention_s), models, "bench:0")


def records(msgs: list[tuple[bytes, bytes]], topic: str) -> list[Record]:
    """Raw records as the scoring loop hands them over."""
    now = int(time.time() * 1000)
    return [Record(topic, 0, i, k, v, now) for i, (k, v) in enumerate(msgs)]


def cpu_per_event(sc: Scorer, recs: list[Record]) -> float:
    """Thread CPU microseconds per event of ``sc.process`` over ``recs``, batch by batch."""
    t0 = time.thread_time()
    for i in range(0, len(recs), BATCH):
        sc.process(recs[i : i + BATCH])
    return 1e6 * (time.thread_time() - t0) / len(recs)


def seed_history(sc: Scorer, prefix: str, days: int, end: float) -> None:
    """Hourly counters over ``days`` before ``end`` for HIST_ENTITIES cards and terminals."""
    r, names, spec = sc.store.r, sc.names, sc.spec
    last = spec.bucket(end)
    buckets = range(last - days * spec.per_day + 1, last + 1)
    p = r.pipeline(transaction=False)
    for kind in ("card", "terminal"):
        for i in range(HIST_ENTITIES):
            fields = {f"n:{b}": 3 for b in buckets} | {f"v:{b}": 90.5 for b in buckets}
            p.hset(names.entity(kind, f"{prefix}{kind[0]}{i}"), mapping=fields)
    p.execute()


def history_events(prefix: str, n: int, end: float, seed: int) -> list[tuple[bytes, bytes]]:
    """n transactions on the seeded entities, all at ``end``."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (c, t) in enumerate(rng.integers(0, HIST_ENTITIES, (n, 2))):
        body = (
            f'{{"event_id":"{prefix}e{i}","timestamp":{end},"card_id":"{prefix}c{c}",'
            f'"terminal_id":"{prefix}t{t}","amount":{10 + i % 90}}}'
        )
        out.append((f"{prefix}c{c}".encode(), body.encode()))
    return out


def main() -> None:
    """Print per-event CPU for live traffic and for entities with 1 and 30 days of history."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-hot-"))
    live, hist = [], {1: [], 30: []}
    pauses: list[float] = []
    start: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            start.append(time.perf_counter())
        elif start:
            pauses.append(time.perf_counter() - start.pop())

    with EmbeddedStack(tmp, kafka=False) as stack:
        s = Settings(redis_url=stack.redis_url, data_dir=tmp, topic_prefix="hot-")
        sc = scorer(s)
        topic = sc.names.topic("transactions")
        sc.process(records(payloads(BATCH, np.full(BATCH, time.time()), 0, "w-"), topic))
        try:  # as the worker does once started (absent from older code: compare with it)
            from riverwatch.streams.batching import tune_gc  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            tune_gc = None
        if tune_gc is not None and not os.environ.get("RW_HOT_NO_GC_TUNING"):
            tune_gc()
        for rep in range(REPEATS):
            msgs = payloads(EVENTS, np.full(EVENTS, time.time()), rep + 1, f"l{rep}-")
            gc.callbacks.append(on_gc)
            live.append(cpu_per_event(sc, records(msgs, topic)))
            gc.callbacks.remove(on_gc)
            end = time.time() - 3600
            for days in (1, 30):
                prefix = f"h{rep}d{days}-"
                seed_history(sc, prefix, days, end)
                evs = history_events(prefix, EVENTS // 4, end, rep)
                hist[days].append(cpu_per_event(sc, records(evs, topic)))
    print(f"\nriverwatch scorer hot path (in process, real Valkey, batches of {BATCH}, "
          f"{REPEATS} repeats, load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    for name, vals in (("live traffic", live), ("1 day of history", hist[1]),
                       ("30 days of history", hist[30])):  # fmt: skip
        print(f"  {name:<20} CPU per event: median {statistics.median(vals):6.1f} us "
              f"(min {min(vals):.1f}, max {max(vals):.1f})")  # fmt: skip
    ratio = statistics.median(hist[30]) / statistics.median(hist[1])
    print(f"  30 days / 1 day of history: {ratio:.2f}x")
    if pauses:
        print(f"  GC pauses in the live runs: {len(pauses)}, total {1000 * sum(pauses):.0f} ms, "
              f"max {1000 * max(pauses):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
