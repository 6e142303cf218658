"""The raw rates of a broker that bench.pipeline divides by: a plain consumer-group member's
and (``RW_BENCH_FAUST=1``) a faust agent's that only counts, on the same broker in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer

from bench.openloop import payloads
from riverwatch.core.kafka import produce_waiting
from tests.support.workers import poll


def produce_raw(bootstrap: str, topic: str, n: int) -> None:
    """n transactions as fast as possible (the raw consumer's input)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for k, v in payloads(n, np.full(n, time.time()), 1, "raw-"):
        produce_waiting(p, topic, v, k)
    assert p.flush(60) == 0


def raw_consume(bootstrap: str, topic: str, n: int) -> float:
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
    got, t0 = 0, 0.0
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        for m in c.consume(5000, 0.5):
            if m.error() is None:
                t0 = t0 or time.perf_counter()
                got += 1
    c.close()
    assert got >= n, f"raw consumer saw {got} of {n}"
    return n / (time.perf_counter() - t0)


def faust_count(bootstrap: str, topic: str, n: int) -> float:
    """Events/s of a faust agent that only counts."""
    out = Path(tempfile.mkdtemp()) / "count.json"
    argv = [sys.executable, "-m", "bench.faust_count", bootstrap, topic, str(n), str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: out.exists() and out.stat().st_size > 0, 300, "the faust counter", every=0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    res = json.loads(out.read_text())
    return float(res["n"] / res["seconds"])
