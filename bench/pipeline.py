"""Pipeline benchmark: every figure on the same embedded broker, in the same run.

1. raw consume rate (confluent-kafka consumer group, count only, and with json.loads);
2. a faust agent that only counts (the framework's ceiling);
3. end-to-end scored transactions/s of one scoring worker on a backlog, and per CPU second
   of that worker;
4. p50/p99 event-to-score latency at a fixed offered rate (Kafka create time of the
   transaction -> its score produced, as recorded by the worker in ``latency_ms``).

3 and 4 run twice: one `riverwatch worker` with every role, then a scorer and a helper
process (``--roles``) as `riverwatch up` and the deploy manifests run them.

Sizes: RW_BENCH_N (default 100000) transactions, RW_BENCH_RATE (2000/s) for RW_BENCH_SECONDS
(15) in the latency run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench import stack_settings
from core.names import Names
from core.settings import Settings
from riverwatch.embedded import EmbeddedStack
from tests.integration.workers import deployed, poll

N = int(os.environ.get("RW_BENCH_N", "100000"))
RATE = int(os.environ.get("RW_BENCH_RATE", "2000"))
SECONDS = float(os.environ.get("RW_BENCH_SECONDS", "15"))
T0 = 1_767_225_600


def transactions(n: int, seed: int = 1, prefix: str = "b") -> list[tuple[bytes, bytes]]:
    """n (key, value) transaction payloads over 30 days: 5000 cards, 10000 terminals."""
    rng = np.random.default_rng(seed)
    cards = rng.integers(0, 5000, n)
    terms = rng.integers(0, 10000, n)
    amounts = np.round(rng.lognormal(3.5, 0.8, n), 2)
    ts = np.sort(rng.uniform(T0, T0 + 30 * 86400, n))
    return [
        (
            f"c{cards[i]}".encode(),
            orjson.dumps(
                {
                    "event_id": f"{prefix}{i}",
                    "timestamp": float(ts[i]),
                    "card_id": f"c{cards[i]}",
                    "terminal_id": f"t{terms[i]}",
                    "amount": float(amounts[i]),
                }
            ),
        )
        for i in range(n)
    ]


def produce(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]]) -> None:
    """Produce prebuilt messages and wait for every ack."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i, (k, v) in enumerate(msgs):
        while True:
            try:
                p.produce(topic, v, k)
                break
            except BufferError:
                p.poll(0.05)
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def raw_consume(bootstrap: str, topic: str, n: int, parse: bool) -> float:
    """Messages/s of a consumer-group member reading n messages (first message to last)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    got, t0 = 0, None
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        for m in c.consume(5000, 0.5):
            if m.error() is None:
                if t0 is None:
                    t0 = time.perf_counter()
                if parse:
                    json.loads(m.value())
                got += 1
    c.close()
    assert got >= n, f"raw consumer saw {got} of {n}"
    return n / (time.perf_counter() - (t0 or 0))


def faust_count(bootstrap: str, topic: str, n: int) -> float:
    """Events/s of a faust agent that only counts."""
    out = Path(tempfile.mkdtemp()) / "count.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_count", bootstrap, topic, str(n), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: out.exists() and out.stat().st_size > 0, 300, "the faust counter", every=0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    res = json.loads(out.read_text())
    return float(res["n"] / res["seconds"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_scores(bootstrap: str, topic: str, n: int, timeout: float) -> list[dict]:
    """Read n score records from the start of ``topic``."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"scores-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += [orjson.loads(m.value()) for m in c.consume(5000, 0.5) if m.error() is None]
    c.close()
    return out


def end_to_end(settings: Settings, logdir: Path, split: bool) -> tuple[float, float]:
    """Scored tx/s of one scoring worker draining a backlog of N, and tx per its CPU-second."""
    names = Names(settings.topic_prefix)
    produce(settings.kafka_bootstrap or "", names.topic("transactions"), transactions(N))
    with deployed(settings, logdir / f"e2e-{split}-worker.log", split) as w:
        cpu0 = cpu_seconds(w.pid)
        scores = read_scores(settings.kafka_bootstrap or "", names.topic("scores"), N, 600)
        cpu = cpu_seconds(w.pid) - cpu0
    assert len(scores) >= N, f"only {len(scores)} of {N} scored"
    at = sorted(datetime.fromisoformat(s["scored_at"]).timestamp() for s in scores)
    return N / (at[-1] - at[0]), N / cpu


def latency(settings: Settings, logdir: Path, split: bool) -> tuple[float, float, int]:
    """p50, p99 (ms) and count at RATE tx/s offered for SECONDS, through one scoring worker."""
    names = Names(settings.topic_prefix)
    topic = names.topic("transactions")
    total = int(RATE * SECONDS)
    msgs = transactions(total + 1, seed=2, prefix="l")
    p = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1, "enable.idempotence": True}
    )
    with deployed(settings, logdir / f"lat-{split}-worker.log", split):
        p.produce(topic, msgs[0][1], msgs[0][0])  # warm-up: wait until the scorer is assigned
        p.flush(10)
        read_scores(settings.kafka_bootstrap or "", names.topic("scores"), 1, 60)
        start = time.perf_counter()
        for i, (k, v) in enumerate(msgs[1:]):
            due = start + i / RATE
            while (now := time.perf_counter()) < due:
                p.poll(min(due - now, 0.001))
            p.produce(topic, v, k)
        p.flush(30)
        scores = read_scores(settings.kafka_bootstrap or "", names.topic("scores"), total + 1, 120)
    lat = np.array([s["latency_ms"] for s in scores if s["event_id"] != "l0"])
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), len(lat)


def main() -> None:
    """Run every measurement and print the table."""
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-bench-"))
    with EmbeddedStack(tmp) as stack:
        bs = stack.bootstrap or ""
        admin = AdminClient({"bootstrap.servers": bs})
        admin.create_topics([NewTopic("bench-raw", 4, 1)])["bench-raw"].result(10)
        print(f"producing {N} transactions to the embedded broker...", flush=True)
        produce(bs, "bench-raw", transactions(N))
        raw = raw_consume(bs, "bench-raw", N, parse=False)
        raw_json = raw_consume(bs, "bench-raw", N, parse=True)
        print("faust count-only agent...", flush=True)
        fst = faust_count(bs, "bench-raw", N)

        def settings(prefix: str) -> Settings:
            return stack_settings(stack, tmp / prefix, prefix)

        rows_e2e: list[tuple[str, str]] = []
        for split, layout in ((False, "1 all-roles worker"), (True, "scorer + helper (as up)")):
            print(f"end-to-end scoring of a backlog, {layout}...", flush=True)
            tag = "split" if split else "all"
            e2e, per_cpu = end_to_end(settings(f"e2e-{tag}-"), tmp, split)
            print(f"latency at {RATE} tx/s for {SECONDS:.0f} s, {layout}...", flush=True)
            p50, p99, n_lat = latency(settings(f"lat-{tag}-"), tmp, split)
            rows_e2e += [
                (f"end-to-end scored, backlog, {layout}", f"{e2e:,.0f} tx/s"),
                ("  per scoring-process CPU-second", f"{per_cpu:,.0f} tx/s"),
                ("  ratio to raw consume / to faust ceiling", f"{e2e / raw:.3f} / {e2e / fst:.2f}"),
                (
                    f"  event-to-score latency at {RATE} tx/s (n={n_lat})",
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                ),
            ]
        mem = stack.memory()
    rows = [
        ("raw consume, count only (confluent-kafka, group)", f"{raw:,.0f} msg/s"),
        ("raw consume + json.loads", f"{raw_json:,.0f} msg/s"),
        ("faust agent, count only (framework ceiling)", f"{fst:,.0f} msg/s"),
        *rows_e2e,
        (
            "broker / Valkey RSS at the end",
            f"{(mem.get('kafka') or 0) / 2**20:.0f} MiB / "
            f"{(mem.get('redis') or 0) / 2**20:.0f} MiB",
        ),
    ]
    print(f"\nriverwatch pipeline benchmark (N={N}, {os.cpu_count()} cores, Tansu in memory)")
    width = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"  {name:<{width}}  {val}")


if __name__ == "__main__":
    main()
