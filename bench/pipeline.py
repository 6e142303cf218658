"""Pipeline benchmark: what a user of ``scores`` sees, every figure on one broker in one run.

1. the raw consume rate of the same broker (confluent-kafka group member, count only): the
   denominator of every ratio;
2. a scorer and a helper process (``--roles``, as ``riverwatch up`` runs them), fed open loop by
   a plain producer at each offered rate (event time = scheduled send time), a reader process on
   ``scores`` stamping arrivals (:mod:`bench.openloop`): p50/p90/p99/p99.9/max from the scheduled
   send time, split at each score's ``scored_at`` (send -> scored, scored -> reader; a line per
   run under the table), scored tx/s, transactions per scorer CPU-second, helper CPU per transaction
   (read once the helper's consumer groups have committed every score: ``lag s`` is how long
   that took after the last score reached the reader), and the broker's and Valkey's CPU per
   transaction over the same span (they serve the producer, the reader and the helper too);
3. saturation: a backlog of RW_BENCH_N sent as fast as possible, drained by the same scorer;
4. a backfill: RW_BENCH_N whose event times span 30 days (the helper's cost per transaction);
5. saturation again, on the state the backfill left (entities with 30 days of history, a fuller
   Valkey): the backfill's throughput over each saturation run's is printed per ladder. Every
   ladder starts on an empty Valkey (FLUSHALL);
6. (``RW_BENCH_FAUST=1``) a faust agent that only counts, the framework's ceiling.

Before the first ladder, one unmeasured deployment is offered 2,000 tx/s for
RW_BENCH_BROKER_WARMUP (30) s, so no ladder pays for the broker's JIT warm-up (0 skips it).

Sizes (short by default, so it runs in a few minutes): RW_BENCH_RATES (500,2000,5000,10000,
20000), RW_BENCH_SECONDS (8) measured after RW_BENCH_WARMUP (2) s per rate, RW_BENCH_N (30000),
RW_BENCH_REPEATS (1), RW_BENCH_BROKER (tansu | kafka), RW_BENCH_BASELINE (a checkout run
interleaved with this code, ABBA, for before/after ratios in one run), RW_BENCH_SCORERS (1;
``1,2`` runs each ladder with one scorer process, then with two in the same consumer group, for
the scaling ratio: saturation throughput and transactions per scorer CPU-second, 2 over 1),
RW_BENCH_CHAMPION (0; k: a batch champion of k members, bench/hotpath_champion.py; ``0,1``:
each ladder without and with one, ABBA). A rate whose scores are not all in within the drain
timeout, or whose p99 passes 5 s, ends the ladder (higher rates are saturated).
RW_BENCH_DUMP=<dir> saves each run's events there (``<tag>.npy``: scheduled send, scored_at,
arrival; epoch seconds) for a look at the tail.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from redis import Redis

from bench import hotpath_champion, stack_settings
from bench.openloop import Reader, Run, offer
from bench.pipeline_report import fmt, scaling
from bench.raw import faust_count, produce_raw, raw_consume
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.shell.procs import free_port
from tests.support.workers import running_worker

N = int(os.environ.get("RW_BENCH_N", "30000"))
RATES = [float(r) for r in os.environ.get("RW_BENCH_RATES", "500,2000,5000,10000,20000").split(",")]
SECONDS = float(os.environ.get("RW_BENCH_SECONDS", "8"))
WARMUP = float(os.environ.get("RW_BENCH_WARMUP", "2"))
REPEATS = int(os.environ.get("RW_BENCH_REPEATS", "1"))
# Seconds of 2,000 tx/s through one unmeasured deployment before the first ladder: Apache
# Kafka's JIT compiles the paths a ladder uses only under that traffic (the raw consume does not
# exercise them). Without it the run's first ladder paid for it: in session 33's four runs the
# broker's CPU was 284-316 us per transaction at 2,000 tx/s against 199-216 in the same code's
# last ladder, p99 31-229 ms against 16.6-17.3; an A/B of the warm-up alone, README session 34.
BROKER_WARMUP_S = float(os.environ.get("RW_BENCH_BROKER_WARMUP", "30"))
BROKER = os.environ.get("RW_BENCH_BROKER", "tansu")
# A checkout of the code to compare with (e.g. `git archive main | tar -x -C /tmp/base`): each
# repeat then runs its ladder too, on the same broker, interleaved with this code's.
BASELINE = os.environ.get("RW_BENCH_BASELINE") or None
SCORERS = [int(k) for k in os.environ.get("RW_BENCH_SCORERS", "1").split(",")]
# Members of a batch champion promoted before each ladder (bench/hotpath_champion.py; 0: none,
# the online model alone, as every figure before it; a baseline checkout older than
# models.batch.Bagged cannot load one of more than 1 member and scores without it); ``0,1``
# runs each ladder without and with one, ABBA, as RW_BENCH_SCORERS does.
CHAMPIONS = [int(k) for k in os.environ.get("RW_BENCH_CHAMPION", "0").split(",")]


@contextmanager
def deployment(
    settings: Settings, logdir: Path, scorers: int = 1
) -> Iterator[tuple[dict[str, int], dict[str, str]]]:
    """A helper and ``scorers`` scorer processes as ``riverwatch up`` runs them; yields their
    pids (``scorer``, ``scorer2``, ... and ``helper``) and their metrics URLs."""
    from riverwatch.shell.children import HELPER_ROLES, SCORER_ROLES

    def start(name: str, roles: str) -> int:
        port = free_port()
        urls[name] = f"http://127.0.0.1:{port}/metrics"
        own = settings.model_copy(update={"worker_metrics_port": port})
        return st.enter_context(running_worker(own, logdir / f"{name}.log", roles)).pid

    urls: dict[str, str] = {}
    with ExitStack() as st:
        pids = {"helper": start("helper", HELPER_ROLES)}
        for i in range(scorers):
            name = "scorer" if i == 0 else f"scorer{i + 1}"
            pids[name] = start(name, SCORER_ROLES)
        yield pids, urls


@contextmanager
def code(path: str | None) -> Iterator[None]:
    """Workers started inside run the riverwatch checkout at ``path`` (None: this one)."""
    # ``python -m riverwatch`` puts the working directory first on sys.path, before
    # PYTHONPATH: a worker started from a checkout runs that checkout's code whatever
    # PYTHONPATH says, so the workers start in ``path`` too.
    old, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if path:
        os.environ["PYTHONPATH"] = path
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def ladder(
    settings: Settings,
    logdir: Path,
    rep: int,
    checkout: str | None = None,
    scorers: int = 1,
    servers: dict[str, int] | None = None,
    champion: str | None = None,
) -> list[Run]:
    """Every offered rate, then saturation, a backfill and saturation again, on one deployment
    (``servers``: the broker's and Valkey's pids, whose CPU is counted per transaction too).

    Saturation on both sides of the backfill (A-B-A): the backfill meets a fuller Valkey and
    entities with 30 days of history, which the first saturation run did not; the second run
    is live traffic on that state."""
    names = Names(settings.topic_prefix)
    bs, topic = settings.kafka_bootstrap or "", names.topic("transactions")
    valkey = settings.redis_url  # its commands per transaction (bench.workerstats)
    runs: list[Run] = []
    with (
        code(checkout),
        deployment(settings, logdir, scorers) as (workers, urls),
        Reader(bs, names.topic("scores"), logdir / "arrivals.txt") as reader,
    ):
        pids = {**workers, **(servers or {})}
        offer(bs, topic, reader, pids, 200, 2, 0, f"warm{rep}")  # group joined, models loaded
        for name in (n for n in workers if champion and n.startswith("scorer")):
            hotpath_champion.served(logdir / f"{name}.log", champion)
        for rate in RATES:
            print(f"  offered {rate:,.0f} tx/s...", flush=True)
            tag = f"r{rep}-{rate:.0f}"
            run = offer(
                bs, topic, reader, pids, rate, SECONDS, WARMUP, tag, metrics=urls, valkey=valkey
            )
            runs.append(run)
            if run.scored < run.sent or run.lat_ms["p99"] > 5000:
                break
            time.sleep(1)
        print(f"  saturation: a backlog of {N:,}...", flush=True)
        runs.append(
            offer(bs, topic, reader, pids, 0, SECONDS, 0, f"s{rep}", N, metrics=urls, valkey=valkey)
        )
        print(f"  backfill: {N:,} over 30 days of event time...", flush=True)
        month = 30 * 86400
        bf = offer(
            bs, topic, reader, pids, 0, SECONDS, 0, f"b{rep}", N, month, metrics=urls, valkey=valkey
        )
        bf.rate = -1.0  # marks the backfill in the table
        runs.append(bf)
        print(f"  saturation again: a backlog of {N:,}...", flush=True)
        again = offer(
            bs, topic, reader, pids, 0, SECONDS, 0, f"a{rep}", N, metrics=urls, valkey=valkey
        )
        again.rate = -2.0  # marks the second saturation run
        runs.append(again)
        MEMORY.append((rep, {k: worker_memory(pid) for k, pid in workers.items()}))
    return runs


MEMORY: list[tuple[int, dict[str, tuple[int, int]]]] = []  # per ladder: worker -> (RSS, peak)


def worker_memory(pid: int) -> tuple[int, int]:
    """(resident, peak resident) bytes of a live process, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    kb = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in status) if k[:2] == "Vm"}
    return kb["VmRSS"] * 1024, kb["VmHWM"] * 1024


def warm_broker(stack: EmbeddedStack, tmp: Path) -> None:
    """``BROKER_WARMUP_S`` at 2,000 tx/s through a deployment of this code, on its own topics
    and keys (flushed before the first ladder); prints its latency, counted nowhere."""
    if BROKER_WARMUP_S <= 0:
        return
    settings = stack_settings(stack, tmp / "warm", "warm-")
    names = Names(settings.topic_prefix)
    bs, topic = settings.kafka_bootstrap or "", names.topic("transactions")
    print(f"warming the broker: {BROKER_WARMUP_S:g} s at 2,000 tx/s (not measured)...", flush=True)
    with (
        deployment(settings, tmp / "warm") as (workers, _),
        Reader(bs, names.topic("scores"), tmp / "warm" / "arrivals.txt") as reader,
    ):
        offer(bs, topic, reader, workers, 200, 2, 0, "warm-join")  # group joined, models loaded
        run = offer(bs, topic, reader, workers, 2000, BROKER_WARMUP_S, 0, "warm")
    print(f"  warm-up p99 {run.lat_ms['p99']:.1f} ms, {run.scored:,} scored", flush=True)


def main() -> None:
    """Run every measurement and print the tables."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-bench-"))
    load0 = os.getloadavg()
    with EmbeddedStack(tmp, broker=BROKER) as stack:
        bs = stack.bootstrap or ""
        admin = AdminClient({"bootstrap.servers": bs})
        admin.create_topics([NewTopic("bench-raw", 4, 1)])["bench-raw"].result(30)
        print(f"producing {N} transactions for the raw consumer...", flush=True)
        produce_raw(bs, "bench-raw", N)
        raw = raw_consume(bs, "bench-raw", N)
        fst = faust_count(bs, "bench-raw", N) if os.environ.get("RW_BENCH_FAUST") else None
        warm_broker(stack, tmp)
        tables: list[tuple[str, list[Run]]] = []
        for rep in range(REPEATS):
            trees = ((f"baseline {BASELINE}", BASELINE), ("this code", None))
            # ABBA: each tree first in every other repeat (a later ladder meets a fuller broker
            # and Valkey, and a machine that drifts: a fixed order favours one tree)
            for label, checkout in trees if rep % 2 == 0 else trees[::-1]:
                if label.startswith("baseline") and not BASELINE:
                    continue
                runs_of = [(k, c) for k in SCORERS for c in CHAMPIONS]
                for k, c in runs_of if rep % 2 == 0 else runs_of[::-1]:  # ABBA too
                    tag = f"{rep}{'b' if checkout else ''}s{k}c{c}"
                    what = label + (f", {k} scorers" if k > 1 else "")
                    what += f", champion of {c}" if len(CHAMPIONS) > 1 or c else ""
                    print(f"repeat {rep + 1}/{REPEATS}, {what}: {k} scorer(s) + helper...")
                    settings = stack_settings(stack, tmp / f"rep{tag}", f"rep{tag}-")
                    # every ladder on an empty Valkey: a later one met the keys of all before it,
                    # and Valkey's CPU per transaction at saturation rose with the position (58,
                    # 82, 95, 110 us in the four ladders of one run, session 28; two ladders on
                    # an empty Valkey each: 59 and 63 us, saturation 9,415 and 9,342 tx/s)
                    Redis.from_url(str(stack.redis_url)).flushall()
                    champ = hotpath_champion.promote(settings, c) if c else None
                    procs = stack.procs
                    servers = {"broker": procs["kafka"].pid, "valkey": procs["redis"].pid}
                    runs = ladder(settings, tmp / f"rep{tag}", rep, checkout, k, servers, champ)
                    tables.append((what, runs))
        mem = stack.memory()
    load1 = os.getloadavg()
    print(f"\nriverwatch pipeline benchmark ({BROKER}, {os.cpu_count()} cores, N={N}, "
          f"{SECONDS:g} s per rate after {WARMUP:g} s warm-up; load average "
          f"{load0[0]:.2f} at start, {load1[0]:.2f} at end)")  # fmt: skip
    print(f"  raw consume, count only (confluent-kafka, group): {raw:,.0f} msg/s")
    if fst is not None:
        print(f"  faust agent, count only (framework ceiling): {fst:,.0f} msg/s")
    for i, (label, runs) in enumerate(tables):
        print(f" {label}, run {i + 1}: latency (ms) from the scheduled send, at a reader of scores")
        print("\n".join(fmt(runs, raw)))
    for label in dict(tables):
        sat = [r.per_cpu for lb, rs in tables if lb == label for r in rs if r.rate == float("inf")]
        print(f"  {label}: saturation tx per scorer CPU-second over {len(sat)} repeats: "
              f"min {min(sat):,.0f}, max {max(sat):,.0f}")  # fmt: skip
    if len(SCORERS) > 1:
        print("\n".join(scaling(tables)))
    for i, (_, m) in enumerate(MEMORY):
        print(f"  workers' RSS at the end of {tables[i][0]}'s ladder (run {i + 1}), MB of 10^6 "
              "bytes (the issue's unit; MiB are 1.049 MB) and its peak: "
              + ", ".join(f"{k} {rss / 1e6:.0f} ({peak / 1e6:.0f})"
                          for k, (rss, peak) in m.items()))  # fmt: skip
    print(f"  broker / Valkey RSS at the end: {(mem.get('kafka') or 0) / 2**20:.0f} MiB / "
          f"{(mem.get('redis') or 0) / 2**20:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
