"""Performance estimated before the labels arrive, from calibrated scores (as NannyML's CBPE).

If a score is the probability of fraud, each event is a fraud with that probability, so a
window's expected confusion matrix at the decision threshold follows from its scores alone:
expected true positives are the flagged events' scores summed, false negatives the others'.
The interval comes from drawing the labels the scores imply (a Poisson-binomial simulation).
The estimate is only as good as the calibration; the realised figure replaces it once the
window's labels have matured (``monitors.performance``).

Memory and time are bounded whatever a window holds (a time window at a high rate holds
millions of events, and drawing every event's label ``n_sim`` times took ``n_sim * n``
numbers: 1.6 GB for a million events). Up to :data:`EXACT_MAX` events, every event's label
is drawn, ``BLOCK`` numbers at a time (the same draws as one matrix: results unchanged);
beyond, the events are binned by score (:data:`BINS` equal bins, flagged and not apart) and
each bin's frauds drawn as one binomial of its count and mean score. The point estimates are
the exact sums either way. The binned draws' variance exceeds the exact Poisson-binomial's
by ``sum((p_i - mean of its bin)^2) <= n / (4 * BINS^2)`` (``2.5e-7`` per event), against
``sum(p_i * (1 - p_i))``: at a 0.2% fraud rate the interval is wider by under 0.01%; the test
holds both to the same intervals within Monte-Carlo noise
(``tests/unit/monitors/test_cbpe.py``).

>>> p = np.r_[np.full(100, 0.9), np.full(900, 0.01)]
>>> est = estimate(p, threshold=0.5)
>>> round(est.precision, 2), round(est.recall, 2)
(0.9, 0.91)
>>> est.precision_low < est.precision < est.precision_high
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

EXACT_MAX = 20_000  # events whose labels are drawn one by one (a count window: 2,000)
BLOCK = 1_000_000  # numbers drawn at a time on that path (8 MB)
BINS = 1000  # score bins beyond it (flagged and not apart): at most n_sim * 2 * BINS draws


@dataclass(frozen=True)
class Estimate:
    """Expected precision and recall at ``threshold``, with ``confidence`` intervals."""

    n: int
    flagged: int
    expected_frauds: float
    precision: float
    precision_low: float
    precision_high: float
    recall: float
    recall_low: float
    recall_high: float
    threshold: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }


def estimate(
    scores: np.ndarray,
    threshold: float,
    *,
    confidence: float = 0.95,
    n_sim: int = 200,
    seed: int = 0,
) -> Estimate:
    """The expected precision and recall of a window of (calibrated) scores."""
    p = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    p = p[np.isfinite(p)]
    flagged = p >= threshold
    tp, fn = float(p[flagged].sum()), float(p[~flagged].sum())
    nan = math.nan
    precision = tp / int(flagged.sum()) if flagged.any() else nan
    recall = tp / (tp + fn) if tp + fn > 0 else nan
    lo = hi = (nan, nan)
    if len(p):
        hits, frauds = _draws(p, flagged, n_sim, np.random.default_rng(seed))
        q = [(1 - confidence) / 2, (1 + confidence) / 2]
        if flagged.any():
            lo = tuple(np.quantile(hits / flagged.sum(), q))  # type: ignore[assignment]
        with np.errstate(invalid="ignore", divide="ignore"):
            rec = hits / frauds
        rec = rec[np.isfinite(rec)]
        if len(rec):
            hi = tuple(np.quantile(rec, q))  # type: ignore[assignment]
    return Estimate(
        n=len(p),
        flagged=int(flagged.sum()),
        expected_frauds=tp + fn,
        precision=precision,
        precision_low=float(lo[0]),
        precision_high=float(lo[1]),
        recall=recall,
        recall_low=float(hi[0]),
        recall_high=float(hi[1]),
        threshold=threshold,
        confidence=confidence,
    )


def _draws(
    p: np.ndarray, flagged: np.ndarray, n_sim: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per simulation, the flagged frauds and all frauds of labels drawn from ``p`` (every
    event's below :data:`EXACT_MAX` events, per score bin above; see the module)."""
    n = len(p)
    if n <= EXACT_MAX:
        hits, frauds = [], []
        rows = max(1, BLOCK // n)
        for done in range(0, n_sim, rows):
            y = rng.random((min(rows, n_sim - done), n)) < p  # the rows of one n_sim x n draw
            hits.append((y & flagged).sum(axis=1))
            frauds.append(y.sum(axis=1))
        return np.concatenate(hits), np.concatenate(frauds)
    # Binned by hand (np.bincount): a histogram library would not keep each bin's score sum.
    idx = np.minimum((p * BINS).astype(np.int64), BINS - 1) * 2 + flagged
    counts = np.bincount(idx, minlength=2 * BINS)
    sums = np.bincount(idx, weights=p, minlength=2 * BINS)
    used = np.flatnonzero(counts)
    draws = rng.binomial(counts[used], sums[used] / counts[used], size=(n_sim, len(used)))
    return draws[:, used % 2 == 1].sum(axis=1), draws.sum(axis=1)
