"""Two probes of bench.hotpath's history measurement, on a real Valkey, no broker.

``python -m bench.hotpath_probes rounds``: Valkey's CPU per event of each new-hour round (one
round: every history entity's transactions one hour later), for entities with 1 and with 30
days of history, so that where a day's cost goes shows (the round after midnight sums each
entity's kept fields of the new day afresh: ``riverwatch/stores/feature_read.py``).

``python -m bench.hotpath_probes memory``: ``MEMORY USAGE`` of the history entities' bucket
hashes after the new-hour rounds, with and without the read script's kept fields (``S:0`` ..
``S:3``), and how many entities of a live run (bench.hotpath's: 5,000 cards, 10,000
terminals, event time now) keep any.

Both honour RW_HOT_TERMINAL_AT_QUERY (bench.hotpath.seed_history).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import hotpath as hp
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.streams.records import Record
from riverwatch.streams.scorer import Scorer

KEPT = ("S:0", "S:1", "S:2", "S:3")


def _history(sc: Scorer, prefix: str, days: int, end: float) -> list[list[Record]]:
    """Seed ``days`` of history, score each entity once and the same hour's transactions (as
    bench.hotpath does), and return the new-hour rounds' records, unscored."""
    topic = sc.names.topic("transactions")
    hp.seed_history(sc, prefix, days, end)
    hp.cpu_per_event(
        sc, hp.records(hp.history_events(prefix, hp.HIST_ENTITIES, end, 0, "f", pairs=True), topic)
    )
    hp.cpu_per_event(sc, hp.records(hp.history_events(prefix, hp.EVENTS // 4, end, 0, "s"), topic))
    evs = hp.history_events(prefix, hp.EVENTS // 4, end + 3600, 0, "n", step_s=3600)
    recs = hp.records(evs, topic)
    return [recs[i : i + hp.HIST_ENTITIES] for i in range(0, len(recs), hp.HIST_ENTITIES)]


def rounds(sc: Scorer, end: float) -> None:
    """Print Valkey's CPU per event of each new-hour round, by the round's UTC hour."""
    for days in (1, 30):
        out = []
        for k, batch in enumerate(_history(sc, f"r{days}-", days, end)):
            valkey = hp.cpu_per_event(sc, batch)[1]
            out.append(f"{time.gmtime(end + 3600 * (k + 1)).tm_hour}h {valkey:.0f}")
        print(f"{days:>2} days of history, Valkey us per event by round: " + ", ".join(out))


def memory(sc: Scorer, end: float) -> None:
    """Print the history entities' bucket hash sizes with and without their kept fields."""
    r, names = sc.store.r, sc.names
    topic = names.topic("transactions")
    msgs = hp.payloads(20_000, np.full(20_000, time.time()), 1, "l-")
    for i in range(0, len(msgs), hp.BATCH):
        sc.process(hp.records(msgs[i : i + hp.BATCH], topic))
    for days in (1, 30):
        for batch in _history(sc, f"m{days}-", days, end):
            sc.process(batch)
        for kind in ("card", "terminal"):
            keys = [names.entity(kind, f"m{days}-{kind[0]}{i}") for i in range(hp.HIST_ENTITIES)]
            kept = sum(bool(r.hexists(k, f)) for k in keys for f in KEPT) / len(keys)
            with_ = statistics.mean(int(r.memory_usage(k, samples=0) or 0) for k in keys)
            for k in keys:
                r.hdel(k, *KEPT)
            without = statistics.mean(int(r.memory_usage(k, samples=0) or 0) for k in keys)
            print(f"{days:>2} days, {kind}: bucket hash {with_:,.0f} bytes, {without:,.0f} "
                  f"without its {kept:.1f} kept fields")  # fmt: skip
    for kind, many in (("card", 5000), ("terminal", 10_000)):  # bench.openloop's ids
        live = [names.entity(kind, f"{kind[0]}{i}") for i in range(many)]
        n = sum(any(r.hexists(k, f) for f in KEPT) for k in live if r.exists(k))
        print(f"live run, {kind}s: {n} of {sum(r.exists(k) for k in live)} keep any")


def main() -> None:
    """``rounds`` or ``memory`` (see the module's docstring)."""
    what = sys.argv[1] if len(sys.argv) > 1 else "rounds"
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-probe-"))
    with EmbeddedStack(tmp, kafka=False) as stack:
        sc = hp.scorer(Settings(redis_url=stack.redis_url, data_dir=tmp, topic_prefix="hot-"))
        topic = sc.names.topic("transactions")
        sc.process(
            hp.records(hp.payloads(hp.BATCH, np.full(hp.BATCH, time.time()), 0, "w-"), topic)
        )
        end = time.time() - 12 * 3600  # as bench.hotpath: within the day the scorer caches
        {"rounds": rounds, "memory": memory}[what](sc, end)


if __name__ == "__main__":
    main()
