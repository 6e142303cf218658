"""What CBPE's interval costs per window (the third table of ``python -m bench.drift``, or
``python -m bench.cbpe_cost`` alone): peak memory and time of :func:`monitors.cbpe.estimate`
against the way it drew labels before (one ``n_sim x n`` matrix), on windows of 20,000 (a
count window's path: the same numbers) to 300,000 events (the binned path), and how far the
intervals' ends moved, in standard deviations of the sampling spread."""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from riverwatch.monitors.cbpe import estimate


def _matrix(p: np.ndarray, threshold: float, n_sim: int = 200) -> tuple[float, ...]:
    """The interval as it was computed before: every label drawn in one n_sim x n matrix."""
    flagged = p >= threshold
    y = np.random.default_rng(0).random((n_sim, len(p))) < p
    hits, frauds = (y & flagged).sum(axis=1), y.sum(axis=1)
    q = [(1 - 0.95) / 2, (1 + 0.95) / 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = hits / frauds
    rec = rec[np.isfinite(rec)]
    return (*np.quantile(hits / flagged.sum(), q), *np.quantile(rec, q))


def _measure(fn: Callable[[], Any], repeat: int = 3) -> tuple[Any, float, float]:
    """``fn()``, its peak traced memory (MB) and its best time of ``repeat`` (s, untraced)."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return out, peak / 2**20, best


def cbpe_table(sizes: tuple[int, ...] = (20_000, 100_000, 300_000), seed: int = 0) -> None:
    """One row per window size (scores: seed ``seed``, 1% of them fraud-like)."""
    print("| events | matrix: MB, s | estimate(): MB, s | memory ratio | ends moved (sd) |")
    print("|---|---|---|---|---|")
    for n in sizes:
        rng = np.random.default_rng(seed)
        p = rng.beta(0.5, 60, n)
        hot = rng.random(n) < 0.01
        p[hot] = rng.beta(6, 2, int(hot.sum()))
        old, old_mb, old_s = _measure(lambda p=p: _matrix(p, 0.5))
        est, new_mb, new_s = _measure(lambda p=p: estimate(p, 0.5))
        new = (est.precision_low, est.precision_high, est.recall_low, est.recall_high)
        sd_p, sd_r = (old[1] - old[0]) / 3.92, (old[3] - old[2]) / 3.92
        moved = max(
            abs(a - b) / sd for a, b, sd in zip(new, old, (sd_p, sd_p, sd_r, sd_r), strict=True)
        )
        print(
            f"| {n:,} | {old_mb:,.0f}, {old_s:.2f} | {new_mb:,.1f}, {new_s:.2f} "
            f"| {old_mb / new_mb:,.0f}x | {moved:.2f} |"
        )


if __name__ == "__main__":
    cbpe_table()
