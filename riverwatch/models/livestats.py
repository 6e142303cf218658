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

import numpy as np

# Upper bounds (ms) of the latency bins; the last bin is everything above.
LATENCY_BOUNDS_MS = (5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
SCORE_BINS = 10


def batch_stats(
    scores: Sequence[float], decisions: Sequence[str], latencies_ms: Sequence[float], alerts: int
) -> dict[str, float]:
    """The fields one batch adds: n, d:<decision>, s:<score decile>, lat:<bin>, alerts."""
    if len(scores) >= VECTOR_FROM:
        return _batch_stats_np(scores, decisions, latencies_ms, alerts)
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


# From this many scores a batch's figures are counted with numpy (the same fields and
# counts as the loop above, ~0.2 us an event instead of ~1.5 at batches of 500; below it
# numpy's fixed cost, ~20 us a call, is dearer than the loop).
VECTOR_FROM = 32


def _batch_stats_np(
    scores: Sequence[float], decisions: Sequence[str], latencies_ms: Sequence[float], alerts: int
) -> dict[str, float]:
    c: Counter[str] = Counter({"n": len(scores)})
    s = np.asarray(scores, dtype=float)
    finite = np.isfinite(s)
    if not finite.all():
        c["nonfinite"] = int((~finite).sum())
    # int() truncates toward zero, as the loop's int(s * SCORE_BINS) does, before the clip
    deciles = np.clip(np.trunc(s[finite] * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.int64)
    for i, k in enumerate(np.bincount(deciles, minlength=SCORE_BINS).tolist()):
        if k:
            c[f"s:{i}"] = k
    c.update(f"d:{d}" for d in decisions)
    lat = np.asarray(latencies_ms, dtype=float)
    if len(lat):
        # bisect_left's bin: the first bound >= lat; a NaN (no comparison holds) lands in the
        # first bin there, past the last in searchsorted
        bins = np.searchsorted(np.asarray(LATENCY_BOUNDS_MS), lat, side="left")
        bins[np.isnan(lat)] = 0
        for i, k in enumerate(np.bincount(bins, minlength=len(LATENCY_BOUNDS_MS) + 1).tolist()):
            if k:
                c[f"lat:{i}"] = k
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
