"""API ingest rate with batched requests (issue 15: at least 10,000 events/s).

The stack: embedded broker and Valkey, and the API as its own process (``riverwatch api``, as
`riverwatch up` runs it), no workers (``RIVERWATCH_MAX_LAG=0``: the lag gate is off, nothing
consumes). For each batch size, ``RW_INGEST_CLIENTS`` threads with one httpx client each POST
JSON arrays of transactions to ``/v1/transactions`` for ``RW_INGEST_SECONDS``; the table gives
accepted events/s, request p50/p99, and the API process's CPU per event (utime+stime from
/proc over the phase). Every 202 is a promise (acks=all): at the end the topic's record count
must equal the sum of ``accepted``. The denominator, in the same run: a plain confluent-kafka
producer (the API's own settings: idempotent, acks=all) sending the same wire records to the
same broker.

Environment: RW_INGEST_SIZES (default 1,100,500,1000), RW_INGEST_CLIENTS (4),
RW_INGEST_SECONDS (5), RW_INGEST_RAW_N (200000), RW_BENCH_BROKER (tansu or kafka),
RW_INGEST_BASELINE (another checkout's API, interleaved), RW_INGEST_PROFILE (a path: each
API's main thread runs under cProfile and writes its stats to ``<path>.<code>``; read them
with ``python -m pstats``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench import stack_settings
from riverwatch.context_parts import kafka_config, redis_config
from riverwatch.core.apikeys import create_key
from riverwatch.core.events import Transaction, dumps
from riverwatch.core.kafka import produce_waiting, producer
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings, to_env
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.shell.procs import free_port
from tests.support.workers import poll

SIZES = [int(x) for x in os.environ.get("RW_INGEST_SIZES", "1,100,500,1000").split(",")]
CLIENTS = int(os.environ.get("RW_INGEST_CLIENTS", "4"))
SECONDS = float(os.environ.get("RW_INGEST_SECONDS", "5"))
RAW_N = int(os.environ.get("RW_INGEST_RAW_N", "200000"))
BROKER = os.environ.get("RW_BENCH_BROKER", "tansu")
# A checkout to compare with (`git archive <rev> | tar -x -C /tmp/base`): its API runs beside
# this one on the same broker, the two alternating size by size.
BASELINE = os.environ.get("RW_INGEST_BASELINE") or None
PROFILE = os.environ.get("RW_INGEST_PROFILE")  # a path: the API runs under cProfile, stats there
T0 = 1_767_225_600  # 2026-01-01
TARGET = 10_000


def record(tag: str, i: int) -> dict[str, object]:
    return {
        "event_id": f"{tag}-{i}",
        "timestamp": T0 + i % 86_400,
        "card_id": f"card-{i % 5000}",
        "terminal_id": f"term-{i % 1000}",
        "amount": round(5 + (i * 7919) % 30_000 / 100, 2),
    }


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_topic(bootstrap: str | None, topic: str) -> tuple[int, int]:
    """(records, distinct event ids) on ``topic``, read from the start of every partition until
    2 s pass with nothing new (the watermarks alone are not trusted: Tansu's lag behind)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ingest-bench-count",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        n, ids, quiet = 0, set(), time.monotonic() + 5
        while time.monotonic() < quiet:
            msgs = c.consume(10_000, 0.5)
            for m in msgs:
                if m.error() is None:
                    n += 1
                    ids.add(orjson.loads(m.value() or b"{}")["event_id"])
            if msgs:
                quiet = time.monotonic() + 2
        return n, len(ids)
    finally:
        c.close()


def raw_produce(stack: EmbeddedStack, settings: Settings, topic: str, n: int) -> float:
    """Records/s of the API's producer settings sending the same wire form, first to last ack."""
    admin = AdminClient({"bootstrap.servers": str(stack.bootstrap)})  # kept while it works
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    wire = []
    for i in range(n):
        event = Transaction.model_validate(record("raw", i))
        wire.append((event.card_id.encode(), dumps(event)))
    p = producer(kafka_config(settings))
    t = time.perf_counter()
    for k, v in wire:
        produce_waiting(p, topic, v, k)
    assert p.flush(60) == 0, "the raw producer did not deliver everything"
    rate = n / (time.perf_counter() - t)
    got = count_topic(stack.bootstrap, topic)
    assert got == (n, n), f"raw topic holds {got} (records, ids) of {n}"
    return rate


def blast(base: str, key: str, size: int, seconds: float, tag: str) -> tuple[int, list[float]]:
    """CLIENTS threads POST batches of ``size`` for ``seconds``: (accepted, request latencies)."""
    accepted = [0] * CLIENTS
    lat: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(c: int) -> None:
        i = 0
        with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
            while time.monotonic() < stop and not errors:
                body = orjson.dumps([record(f"{tag}-c{c}", i + j) for j in range(size)])
                i += size
                t = time.perf_counter()
                r = http.post("/v1/transactions", content=body)
                lat[c].append(time.perf_counter() - t)
                if r.status_code != 202 or r.json()["rejected"]:
                    errors.append(f"{r.status_code}: {r.text[:300]}")
                    return
                accepted[c] += r.json()["accepted"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    return sum(accepted), [x for part in lat for x in part]


@contextmanager
def api_process(settings: Settings, log: Path, code: str | None) -> Iterator[tuple[str, int]]:
    """``riverwatch api`` as its own process (of the checkout at ``code``, or this one);
    yields (base URL, pid) once it answers."""
    port = free_port()
    env = {**os.environ, **to_env(settings), "RIVERWATCH_API_PORT": str(port)}
    env["RIVERWATCH_LOG_LEVEL"] = "WARNING"
    if code:
        env["PYTHONPATH"] = code  # ahead of the editable install of this checkout
    profile = ["-m", "cProfile", "-o", f"{PROFILE}.{log.stem}"] if PROFILE else []
    argv = [sys.executable, *profile, "-m", "riverwatch", "api"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, cwd=code)  # -m: cwd first
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            poll(answers, 120, f"the API ({log})")
            yield base, proc.pid
        finally:
            proc.send_signal(signal.SIGINT if PROFILE else signal.SIGTERM)  # cProfile writes on INT
            proc.wait(20)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-ingest-bench-"))
    codes = {"this": None, **({"baseline": BASELINE} if BASELINE else {})}
    rows, total, raw, promised = [], (0, 0), 0.0, 0
    with EmbeddedStack(tmp / "stack", broker=BROKER) as stack, ExitStack() as st:
        s = stack_settings(stack, tmp / "data", "ibench-", partitions=4, max_lag=0)
        names = Names(s.topic_prefix)
        client = redis_client(redis_config(s))
        st.callback(client.close)
        key = create_key(client, names, "bench", ["ingest"])
        apis = {n: st.enter_context(api_process(s, tmp / f"{n}.log", c)) for n, c in codes.items()}
        for name, (base, _) in apis.items():  # imports, connections, the producer's metadata
            promised += blast(base, key, 100, 1.0, f"warm-{name}")[0]
        for size in SIZES:
            for name, (base, pid) in apis.items():  # the codes alternate, size by size
                c0, t = cpu_s(pid), time.perf_counter()
                got, lat = blast(base, key, size, SECONDS, f"{name}-s{size}")
                promised += got
                wall, cpu = time.perf_counter() - t, cpu_s(pid) - c0
                ms = np.asarray(lat) * 1000
                p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
                rows.append((name, size, got / wall, p50, p99, cpu / got))
        raw = raw_produce(stack, s, "ibench-raw", RAW_N)
        total = count_topic(stack.bootstrap, names.topic("transactions"))
    # every 202 was answered after acks=all: the topic holds exactly what was accepted
    assert total == (promised, promised), f"accepted {promised:,}; on the topic {total}"
    print(f"\nPOST /v1/transactions, {CLIENTS} clients, {SECONDS:g} s per size, broker {BROKER}")
    head = f"{'code':<10}{'records/request':>16}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    print(f"{head}{'API CPU us/ev':>15}")
    for name, size, rate, p50, p99, cpu in rows:
        print(f"{name:<10}{size:>16}{rate:>10,.0f}{p50:>9.1f}{p99:>9.1f}{cpu * 1e6:>15.1f}")
    print(f"raw produce, same broker, API's producer settings: {raw:,.0f} records/s")
    print(f"target: >= {TARGET:,} events/s with batched requests")
    print(
        f"accepted in all (with warm-up) {promised:,} = records on the topic {total[0]:,} "
        f"(distinct event ids {total[1]:,})"
    )


if __name__ == "__main__":
    main()
