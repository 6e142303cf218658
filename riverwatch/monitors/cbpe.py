"""Performance estimated before the labels arrive, from calibrated scores (as NannyML's CBPE).

If a score is the probability of fraud, each event is a fraud with that probability, so a
window's expected confusion matrix at the decision threshold follows from its scores alone:
expected true positives are the flagged events' scores summed, false negatives the others'.
The interval comes from drawing the labels the scores imply (a Poisson-binomial simulation).
The estimate is only as good as the calibration; the realised figure replaces it once the
window's labels have matured (``monitors.performance``).

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
        rng = np.random.default_rng(seed)
        y = rng.random((n_sim, len(p))) < p
        hits = (y & flagged).sum(axis=1)
        frauds = y.sum(axis=1)
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
