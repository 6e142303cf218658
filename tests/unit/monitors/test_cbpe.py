"""CBPE's bounded draws: a count window's estimate is what drawing the whole label matrix gave
(the same numbers), a large window's binned draws give the same intervals within Monte-Carlo
noise, and a large window no longer costs memory in proportion to ``n_sim * n``."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from riverwatch.monitors import cbpe
from riverwatch.monitors.cbpe import estimate


def scores(seed: int, n: int, fraud: float = 0.01) -> np.ndarray:
    """Calibrated-looking scores: most near 0, a fraud share near 1, some in between."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 60, n)
    hot = rng.random(n) < fraud
    p[hot] = rng.beta(6, 2, int(hot.sum()))
    return p


def matrix_estimate(p: np.ndarray, threshold: float, n_sim: int = 200, seed: int = 0) -> tuple:
    """The estimator as it was: every event's label drawn in one ``n_sim x n`` matrix."""
    flagged = p >= threshold
    y = np.random.default_rng(seed).random((n_sim, len(p))) < p
    hits, frauds = (y & flagged).sum(axis=1), y.sum(axis=1)
    q = [(1 - 0.95) / 2, (1 + 0.95) / 2]  # as estimate() computes them
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = hits / frauds
    rec = rec[np.isfinite(rec)]
    return tuple(np.quantile(hits / flagged.sum(), q)), tuple(np.quantile(rec, q))


@pytest.mark.parametrize(("seed", "n"), [(0, 2000), (1, 2000), (2, 20_000)])
def test_up_to_the_exact_limit_the_estimate_is_unchanged(seed: int, n: int) -> None:
    p = scores(seed, n)
    est = estimate(p, 0.5)
    (plo, phi), (rlo, rhi) = matrix_estimate(p, 0.5)
    assert (est.precision_low, est.precision_high) == (plo, phi)
    assert (est.recall_low, est.recall_high) == (rlo, rhi)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_binned_draws_give_the_exact_intervals_within_monte_carlo_noise(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths with 4,000 simulations on one window: point estimates identical, interval
    ends within a quarter of the sampling spread (the quantiles' own Monte-Carlo error is
    ~0.06 of it at 4,000 draws; the binning's excess variance is 2.5e-7 per event)."""
    p = scores(seed, 6000, fraud=0.02)
    exact = estimate(p, 0.5, n_sim=4000)
    monkeypatch.setattr(cbpe, "EXACT_MAX", 0)
    binned = estimate(p, 0.5, n_sim=4000)
    for metric in ("precision", "recall"):
        assert getattr(binned, metric) == pytest.approx(getattr(exact, metric), rel=1e-12)
        lo, hi = getattr(exact, f"{metric}_low"), getattr(exact, f"{metric}_high")
        sd = (hi - lo) / (2 * 1.96)
        assert sd > 0
        assert abs(getattr(binned, f"{metric}_low") - lo) < 0.25 * sd
        assert abs(getattr(binned, f"{metric}_high") - hi) < 0.25 * sd
    assert binned.flagged == exact.flagged and binned.n == exact.n


def test_a_large_window_costs_memory_bounded_by_its_bins() -> None:
    """300,000 events: drawing the whole matrix needed 200 x 300,000 numbers (480 MB, and
    60 MB of booleans each time); the binned draws need a few copies of the scores."""
    p = scores(6, 300_000)
    tracemalloc.start()
    try:
        est = estimate(p, 0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a few copies of the scores (7.5 MB measured) and the draws (n_sim x used bins), not
    # the 1,800 bytes per event of the matrix
    assert peak < 40 * 300_000
    assert est.n == 300_000 and math.isfinite(est.precision_low)
    assert est.precision_low < est.precision < est.precision_high
    assert est.recall_low < est.recall < est.recall_high
