"""The workers' own figures over a run, read from their Prometheus endpoints
(``RIVERWATCH_WORKER_METRICS_PORT``): batches per stage, their mean size and cycle time (handed
to the handler -> outputs handed to the producer), and the garbage collector's pauses
(:mod:`riverwatch.core.metrics`). A quantile read from a histogram is the upper bound of the
bucket it falls in ("<= 25"), not an interpolation.

>>> before = {("riverwatch_batch_seconds_bucket", (("le", "0.01"), ("stage", "s"))): 2.0}
>>> after = {("riverwatch_batch_seconds_bucket", (("le", "0.01"), ("stage", "s"))): 5.0}
>>> delta(before, after)
{('riverwatch_batch_seconds_bucket', (('le', '0.01'), ('stage', 's'))): 3.0}
>>> upper_bound({0.005: 90, 0.01: 99, 0.025: 100, float("inf"): 100}, 0.99)
0.01
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CYCLE, SIZE, GC = "riverwatch_batch_seconds", "riverwatch_batch_size", "riverwatch_gc_pause_seconds"


def scrape(url: str) -> Samples:
    """Every riverwatch batch and GC sample at ``url`` (empty when it does not answer: a worker
    of a checkout without these metrics, or one that is gone)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        if fam.name in (CYCLE, SIZE, GC)
        for s in fam.samples
    }


def delta(before: Samples, after: Samples) -> Samples:
    """What each counter or histogram sample gained between two scrapes."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def upper_bound(buckets: dict[float, float], q: float) -> float:
    """The smallest bucket bound holding a share ``q`` of the observations (cumulative
    counts per bound, +Inf the total)."""
    total = buckets.get(math.inf, 0.0)
    for le in sorted(buckets):
        if total and buckets[le] >= q * total:
            return le
    return math.nan


@dataclass
class Hist:
    """One histogram's gain over a run."""

    count: float = 0.0
    sum: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # bound -> cumulative count

    def top(self) -> float:
        """The bound of the highest bucket that gained an observation."""
        prev, top = 0.0, 0.0
        for le in sorted(self.buckets):
            if self.buckets[le] > prev:
                top = le
            prev = self.buckets[le]
        return top


def histograms(d: Samples, name: str, key: str) -> dict[str, Hist]:
    """Per value of label ``key``: histogram ``name``'s gain (those that gained any)."""
    out: dict[str, Hist] = {}
    for (sample, labels), v in d.items():
        lab = dict(labels)
        h = out.setdefault(lab.get(key, ""), Hist())
        if sample == f"{name}_count":
            h.count = v
        elif sample == f"{name}_sum":
            h.sum = v
        elif sample == f"{name}_bucket":
            h.buckets[float(lab["le"])] = v
    return {k: h for k, h in out.items() if h.count}


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{1000 * seconds:g}"


def summary(d: Samples) -> str:
    """One line: each stage's batches, mean size and cycle p50/p99 (ms, bucket bounds), then
    the collections and their pauses; ``n/a`` when the worker exposes none of them."""
    cycles, sizes = histograms(d, CYCLE, "stage"), histograms(d, SIZE, "stage")
    parts = []
    for stage, h in sorted(cycles.items()):
        size = sizes[stage].sum / h.count if stage in sizes else math.nan
        parts.append(
            f"{stage} {h.count:,.0f} batches of {size:,.0f}, cycle p50 <= "
            f"{_ms(upper_bound(h.buckets, 0.5))} ms, p99 <= {_ms(upper_bound(h.buckets, 0.99))} ms"
        )
    pauses = histograms(d, GC, "generation").values()
    if parts or pauses:
        n, total = sum(h.count for h in pauses), sum(h.sum for h in pauses)
        worst = max((h.top() for h in pauses), default=0.0)
        parts.append(f"GC {n:,.0f} pauses, {1000 * total:.1f} ms in all, max <= {_ms(worst)} ms")
    return "; ".join(parts) or "n/a"


# Valkey's side: its own count and time per command (INFO commandstats; the time is the
# commands' execution only, scripts included, not the networking or the background work that
# the process's CPU column also holds).
Commands = dict[str, tuple[float, float]]  # command -> (calls, microseconds)


def valkey_commands(url: str | None) -> Commands:
    """Valkey's calls and microseconds so far per command (empty without a URL or an answer;
    the embedded stack's Valkey takes no password)."""
    if not url:
        return {}
    try:
        with redis.Redis.from_url(url, socket_timeout=5) as r:
            stats = r.info("commandstats")
    except redis.RedisError:
        return {}
    return {k.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for k, v in stats.items()}


def valkey_summary(before: Commands, after: Commands, n: int) -> str:
    """Per transaction: Valkey's commands and their time, the five costliest by time (a
    script's own commands are counted both on their own and inside the script's time).

    >>> valkey_summary({"get": (10, 50)}, {"get": (30, 90), "evalsha": (2, 400)}, 10)
    'commands 2.2 per tx, 44.0 us per tx; evalsha 0.20 40.0 us, get 2.00 4.0 us'
    """
    d = {}
    for k, (c, u) in after.items():
        c0, u0 = before.get(k, (0, 0))
        if c > c0 and k != "info":  # the bench's own INFO calls left out
            d[k] = (c - c0, u - u0)
    if not d or not n:
        return "no commands"
    calls, usec = sum(c for c, _ in d.values()), sum(u for _, u in d.values())
    top = sorted(d.items(), key=lambda kv: -kv[1][1])[:5]
    per = ", ".join(f"{k} {c / n:.2f} {u / n:.1f} us" for k, (c, u) in top)
    return f"commands {calls / n:.1f} per tx, {usec / n:.1f} us per tx; {per}"
