"""Per-second scoring statistics for live dashboards: counts, decisions, latency, scores.

Each worker adds its batch's figures to the hash of the current wall-clock second (fields
below); readers sum the last N seconds. Increments commute, so any number of workers may
write the same second.

>>> stats = batch_stats([0.01, 0.95], ["approve", "decline"], [3.0, 40.0], alerts=1)
>>> stats["n"], stats["d:decline"], stats["s:9"], stats["lat:3"], stats["alerts"]
(2.0, 1.0, 1.0, 1.0, 1.0)

A score that is not a finite number (models.scoring never gives one) is counted in ``n`` and
``nonfinite``, in no decile; one outside [0, 1] goes to the nearest decile:

>>> stats = batch_stats([float("nan"), 7.0], ["review", "review"], [float("nan")], alerts=0)
>>> stats["n"], stats["nonfinite"], stats["s:9"]
(2.0, 1.0, 1.0)
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

# Upper bounds (ms) of the latency bins; the last bin is everything above.
LATENCY_BOUNDS_MS = (5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
SCORE_BINS = 10


def batch_stats(
    scores: Iterable[float], decisions: Iterable[str], latencies_ms: Iterable[float], alerts: int
) -> dict[str, float]:
    """The fields one batch adds: n, d:<decision>, s:<score decile>, lat:<bin>, alerts."""
    c: Counter[str] = Counter()  # ints, stored by HINCRBYFLOAT
    for s in scores:
        c["n"] += 1
        if not math.isfinite(s):  # int(NaN) raises: a dashboard must never stop the scorer
            c["nonfinite"] += 1
            continue
        c[f"s:{min(max(int(s * SCORE_BINS), 0), SCORE_BINS - 1)}"] += 1
    for d in decisions:
        c[f"d:{d}"] += 1
    for lat in latencies_ms:
        c[f"lat:{bisect.bisect_left(LATENCY_BOUNDS_MS, lat)}"] += 1
    c["alerts"] += alerts
    return {k: float(v) for k, v in c.items()}


def summarize(seconds: Iterable[Mapping[str, float]], span_s: int) -> dict[str, object]:
    """Sum per-second hashes into rates, decision shares, a score histogram and latency p50/p99."""
    total: defaultdict[str, float] = defaultdict(float)
    for h in seconds:
        for k, v in h.items():
            total[k] += float(v)
    n = total["n"]
    lat = [total[f"lat:{i}"] for i in range(len(LATENCY_BOUNDS_MS) + 1)]
    return {
        "scored_per_s": n / span_s if span_s else 0.0,
        "scored": n,
        "decisions": {d: total[f"d:{d}"] for d in ("approve", "review", "decline")},
        "fraud_alert_rate": total["alerts"] / n if n else 0.0,
        "score_histogram": [total[f"s:{i}"] for i in range(SCORE_BINS)],
        "latency_ms": {"p50": _quantile(lat, 0.5), "p99": _quantile(lat, 0.99)},
    }


def _quantile(bins: Sequence[float], q: float) -> float | None:
    """Upper bound of the bin holding quantile ``q`` (None when empty; inf-bin -> last bound)."""
    n = sum(bins)
    if not n:
        return None
    acc = 0.0
    for i, b in enumerate(bins):
        acc += b
        if acc >= q * n:
            return LATENCY_BOUNDS_MS[min(i, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]
