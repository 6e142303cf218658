"""Open-loop load and a score reader: latency as a user sees it, measured from outside.

A plain producer sends transactions on a fixed schedule (``start + i / rate``) whatever the
pipeline does, with event time = the scheduled wall time; a reader in its own process reads
``scores`` and stamps each score's arrival. Latency = arrival - scheduled send time, so time a
message waited behind a slow producer or a slow scorer counts (no coordinated omission).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.workerstats import delta, scrape, summary, valkey_commands, valkey_summary
from riverwatch.core.kafka import produce_waiting
from riverwatch.streams.fetch import next_batch
from tests.support.workers import poll

QUANTILES = (50, 90, 99, 99.9)


def payloads(n: int, epochs: np.ndarray, seed: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """n (key, value) transactions at ``epochs``: 5000 cards, 10000 terminals."""
    rng = np.random.default_rng(seed)
    cards = rng.integers(0, 5000, n)
    terms = rng.integers(0, 10000, n)
    amounts = np.round(rng.lognormal(3.5, 0.8, n), 2)
    return [
        (
            f"c{cards[i]}".encode(),
            orjson.dumps(
                {
                    "event_id": f"{prefix}{i}",
                    "timestamp": float(epochs[i]),
                    "card_id": f"c{cards[i]}",
                    "terminal_id": f"t{terms[i]}",
                    "amount": float(amounts[i]),
                }
            ),
        )
        for i in range(n)
    ]


def _read(bootstrap: str, topic: str, out: str, stop: mp.synchronize.Event) -> None:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "latest",
            # not shorter: Tansu stops serving a consumer with a short wait under a producer
            # (riverwatch.core.kafka.FETCH_WAIT_MS); Kafka answers as soon as it has data
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic], on_assign=lambda *_: open(out + ".ready", "w").close())
    with open(out, "ab", buffering=0) as f:
        while not stop.is_set():
            if lines := stamped(c):
                f.write(b"".join(lines))
    c.close()


def stamped(c: Consumer, block_s: float = 0.05) -> list[bytes]:
    """``event_id arrival-time scored-time`` lines of what ``c`` has fetched, the first waited
    for at most ``block_s`` (scored-time: the score's ``scored_at``, stamped by the scorer
    once the features and scores are computed, before its Redis write and produce; nan
    without one). Not ``c.consume(10_000, block_s)``: that returns only once 10,000 are in
    or the time is up, so each score was stamped up to 50 ms after it arrived (about 25 ms
    added to p50 and 50 to p99 at low rates: the reader's wait, not the pipeline's)."""
    msgs = next_batch(c, 10_000, block_s)
    now = time.time()
    lines = []
    for m in msgs:
        if m.error() is None:
            score = orjson.loads(m.value())
            try:
                scored = datetime.fromisoformat(score["scored_at"]).timestamp()
            except (KeyError, TypeError, ValueError):
                scored = float("nan")
            lines.append(score["event_id"].encode() + b" %.6f %.6f\n" % (now, scored))
    return lines


class Reader:
    """A process reading ``scores`` from its end; :meth:`arrivals` gives event_id -> time."""

    def __init__(self, bootstrap: str, topic: str, path: Path):
        self.bootstrap, self.topic = bootstrap, topic
        self.path = str(path)
        self.stop = mp.get_context("spawn").Event()
        self.proc = mp.get_context("spawn").Process(
            target=_read, args=(bootstrap, topic, self.path, self.stop), daemon=True
        )
        self._seen: dict[str, float] = {}
        self._scored: dict[str, float] = {}  # event_id -> the score's scored_at (epoch)
        self._pos = 0

    def __enter__(self) -> Reader:
        self.proc.start()
        poll(lambda: os.path.exists(self.path + ".ready"), 60, "the score reader's assignment")
        time.sleep(1.0)  # let "latest" resolve before anything is sent
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()

    def arrivals(self) -> dict[str, float]:
        """Every score seen so far (first arrival per event)."""
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self._pos += end
            for line in data[:end].splitlines():
                eid, at, scored = line.split()
                self._seen.setdefault(eid.decode(), float(at))
                self._scored.setdefault(eid.decode(), float(scored))
        return self._seen

    def scored_at(self) -> dict[str, float]:
        """The ``scored_at`` of every score seen so far (read by :meth:`arrivals`)."""
        return self._scored


@dataclass
class Run:
    """One offered rate's outcome."""

    rate: float  # offered tx/s (inf: a backlog sent as fast as possible)
    sent: int
    scored: int
    throughput: float  # scored tx/s at the reader, first arrival to last
    lat_ms: dict[str, float]  # p50 ... max over the measured window
    cpu_s: dict[str, float]  # CPU seconds per process over the run
    helper_lag_s: float = 0.0  # how long the helper kept working after the last score
    # p50 and p99 of the two parts of the latency: the scheduled send to the score's
    # scored_at ("to scored": the inbound hop, queueing, parsing, the feature read, features
    # and scores), and scored_at to the reader ("to reader": the feature store's write, the
    # produce, the outbound hop)
    stage_ms: dict[str, float] = field(default_factory=dict)
    # per worker: its batches, cycle times and GC pauses over the run (bench.workerstats)
    workers: dict[str, str] = field(default_factory=dict)

    @property
    def scorer_cpu_s(self) -> float:
        """CPU seconds of every scorer process (``scorer``, ``scorer2``, ...) together."""
        return sum(v for k, v in self.cpu_s.items() if k.startswith("scorer"))

    @property
    def per_cpu(self) -> float:
        """Scored transactions per scorer CPU-second (all scorer processes together)."""
        return self.scored / self.scorer_cpu_s if self.scorer_cpu_s else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def behind(bootstrap: str, topic: str, upto: dict[int, int]) -> int:
    """How many records of ``topic`` below ``upto`` (partition -> offset) the consumer groups
    that read it (the helper's; not the benchmark's readers) have not committed yet."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    groups = [g.group_id for g in admin.list_consumer_groups().result().valid]
    parts = [TopicPartition(topic, p) for p in upto]
    left = 0
    for g in groups:
        if g.startswith("reader-"):
            continue
        req = [ConsumerGroupTopicPartitions(g, parts)]
        got = admin.list_consumer_group_offsets(req)[g].result().topic_partitions
        if all(tp.offset < 0 for tp in got):
            continue  # this group does not read the topic
        left += sum(max(upto[tp.partition] - max(tp.offset, 0), 0) for tp in got)
    return left


def caught_up(bootstrap: str, topic: str, timeout: float = 300.0) -> float:
    """Wait until the groups reading ``topic`` have committed all it holds now; the seconds
    waited. The helper reads ``scores`` behind the scorer: its CPU read when the last score
    reached the reader leaves out the work still queued, which the next rate's run would then
    be charged with (and the last run's never counted). Committed offsets, not an idle CPU:
    a consumer waiting on a fetch or a rebalance is idle but not done."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-lag-probe"})
    meta = c.list_topics(topic, timeout=10).topics[topic].partitions
    upto = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta}
    c.close()
    t0 = time.monotonic()
    while behind(bootstrap, topic, upto) and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
    return time.monotonic() - t0


def send(p: Producer, topic: str, msgs: list[tuple[bytes, bytes]], rate: float) -> np.ndarray:
    """Produce ``msgs`` (key, value) open loop at ``rate`` a second (0: as fast as possible),
    flushed; each one's scheduled send time (epoch seconds; for a backlog, when it was sent).

    Between sends it sleeps. It used to wait in ``p.poll(min(due - t, 0.0005))``, but
    confluent-kafka truncates a poll timeout to whole milliseconds, so that was ``poll(0)`` in
    a loop: the load generator spun a full core at every offered rate, on the 2 cores the
    system under test had."""
    sched = np.empty(len(msgs))
    w0, p0 = time.time(), time.perf_counter()
    for i, (k, v) in enumerate(msgs):
        if rate > 0 and (wait := p0 + i / rate - time.perf_counter()) > 0:
            time.sleep(wait)
        sched[i] = w0 + (i / rate if rate > 0 else time.perf_counter() - p0)
        produce_waiting(p, topic, v, k, 0.01)
        if i % 256 == 0:
            p.poll(0)  # serve delivery reports
    p.flush(60)
    return sched


def offer(
    bootstrap: str,
    topic: str,
    reader: Reader,
    pids: dict[str, int],
    rate: float,
    seconds: float,
    warmup: float,
    tag: str,
    n_backlog: int = 0,
    epoch_span_s: float = 0.0,
    metrics: dict[str, str] | None = None,
    valkey: str | None = None,
) -> Run:
    """Send at ``rate`` tx/s for ``warmup + seconds`` (or, with ``n_backlog``, that many as fast
    as possible); wait for their scores; latency over the events after the warm-up.

    ``epoch_span_s``: event times spread over that many seconds before now (a backfill) instead
    of event time = send time; latency is still from the send time. ``metrics``: worker ->
    its Prometheus URL, read before and after (:mod:`bench.workerstats`); ``valkey``: Valkey's
    URL, whose commands per transaction are reported the same way.
    """
    backlog = n_backlog > 0
    n = n_backlog if backlog else int(rate * (warmup + seconds))
    skip = 0 if backlog else int(rate * warmup)
    now = time.time()
    if epoch_span_s:
        epochs = np.linspace(now - epoch_span_s, now, n)
    else:  # event time = scheduled send time (fixed after the fact for a backlog)
        epochs = now + 1.0 + np.arange(n) / (rate if not backlog else 1e9)
    msgs = payloads(n, epochs, seed=hash(tag) % 2**32, prefix=f"{tag}-")
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    scraped0 = {k: scrape(url) for k, url in (metrics or {}).items()}
    commands0 = valkey_commands(valkey)
    sched = send(p, topic, msgs, 0.0 if backlog else rate)
    ids = [f"{tag}-{i}" for i in range(n)]
    deadline = time.monotonic() + max(30.0, 3 * (seconds + warmup), n / 2000)
    while time.monotonic() < deadline:
        seen = reader.arrivals()
        if sum(1 for e in ids[-100:] if e in seen) == 100 and all(e in seen for e in ids):
            break
        time.sleep(0.2)
    cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
    lag = 0.0
    if "helper" in pids:  # the helper's CPU once it has caught up, the scorers' at the reader
        lag = caught_up(reader.bootstrap, reader.topic)
        for k in ("helper", "broker", "valkey"):  # the servers worked for the helper too
            if k in pids:
                cpu[k] = cpu_seconds(pids[k]) - cpu0[k]
    workers = {k: summary(delta(scraped0[k], scrape(url))) for k, url in (metrics or {}).items()}
    if valkey:  # after the helper caught up: its commands count too
        workers["Valkey"] = valkey_summary(commands0, valkey_commands(valkey), n)
    seen, scored = reader.arrivals(), reader.scored_at()
    got = [(seen[e], sched[i], scored[e]) for i, e in enumerate(ids) if e in seen]
    at = np.array([a for a, _, _ in got])
    lat = np.array([(a - s) * 1000 for a, s, _ in got[skip:]] or [np.nan])
    stats = {f"p{q:g}": float(np.percentile(lat, q)) for q in QUANTILES}
    stats["max"] = float(lat.max())
    parts = np.array([((c - s) * 1000, (a - c) * 1000) for a, s, c in got[skip:]] or [[np.nan] * 2])
    stages = {
        f"{name} p{q}": float(np.nanpercentile(parts[:, j], q)) if np.isfinite(parts[:, j]).any()
        else float("nan")
        for j, name in enumerate(("to scored", "to reader"))
        for q in (50, 99)
    }  # fmt: skip
    if dump := os.environ.get("RW_BENCH_DUMP"):  # per event: scheduled, scored_at, arrival
        Path(dump).mkdir(parents=True, exist_ok=True)
        np.save(Path(dump) / f"{tag}.npy", np.array([(s, c, a) for a, s, c in got]))
    thr = len(at) / (at.max() - at.min()) if len(at) > 1 else 0.0
    rate = rate if not backlog else float("inf")
    return Run(rate, n, len(got), thr, stats, cpu, lag, stages, workers)
