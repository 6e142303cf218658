"""HistGradientBoosting's weighted bin edges in one sort per feature instead of 254.

scikit-learn 1.9 bins a feature of a weighted fit (under 200,000 rows; above that it
subsamples by weight and bins unweighted) with one ``_weighted_percentile`` call per bin edge,
and each call sorts the column again (``binning._find_binning_thresholds``). Every fit of the
batch model is weighted (the frauds' class weight, the recency weights), and on 187,500 rows
of 18 features those 254 sorts per feature were ~80% of a retrain's CPU (cProfile: 20 of 25 s).

:func:`weighted_percentiles` computes all 254 edges of a feature from one sort and one
cumulative sum, with scikit-learn's own steps and in its order (``_weighted_percentile``,
``average=True``, the averaged inverted CDF), so the edges are the same numbers to the last
bit (tests/unit/models/test_hgb_binning.py compares them with scikit-learn's own function on
ties, zero weights, missing, few and huge values, and the fitted models' predictions).
Written here because no release has it yet: scikit-learn's pull request #34248 makes the same
change upstream. :func:`install` puts it in place only on the scikit-learn versions it was
checked against (1.9.x); on any other it changes nothing.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble._hist_gradient_boosting import binning

CHECKED = ("1.9.",)  # scikit-learn versions whose _find_binning_thresholds this mirrors
_lock = threading.Lock()
_original: Callable[..., np.ndarray] | None = None


def thresholds(col_data: np.ndarray, max_bins: int, sample_weight: Any = None) -> np.ndarray:
    """scikit-learn's bin edges of ``col_data``, the weighted percentiles in one call."""
    assert _original is not None, "install() first"
    if sample_weight is None:
        return _original(col_data, max_bins)
    keep = ~np.isnan(col_data) & (sample_weight != 0)  # as scikit-learn: ignored
    col_data, sample_weight = col_data[keep], sample_weight[keep]
    order = np.argsort(col_data)
    col_data, sample_weight = col_data[order], sample_weight[order]
    if len(np.unique(col_data)) <= max_bins:
        return _original(col_data, max_bins, sample_weight)  # midpoints: no percentile
    ranks = np.linspace(0, 100, num=max_bins + 1)[1:-1]
    edges = np.unique(weighted_percentiles(col_data, sample_weight, ranks))
    np.clip(edges, a_min=None, a_max=binning.ALMOST_INF, out=edges)
    return edges


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``_weighted_percentile(values, weights, ranks, average=True)`` for sorted ``values``
    without NaN or zero weights, every rank at once: scikit-learn's steps, in its order."""
    order = np.argsort(values)  # as scikit-learn does (the ties' order sets the sums' order)
    values, cdf = values[order], np.cumsum(weights[order])
    at = ranks / 100 * cdf[-1]
    at[at == 0] = np.nextafter(at[at == 0], at[at == 0] + 1)
    i = np.clip(np.searchsorted(cdf, at), 0, len(values) - 1)
    below = values[i]
    above = cdf[i] - at > np.finfo(values.dtype).eps  # the rank falls inside value i's weight
    return np.where(above, below, (below + values[np.clip(i + 1, 0, len(values) - 1)]) / 2)


def install() -> bool:
    """Put :func:`thresholds` in scikit-learn's binning, once; True if it is in place."""
    global _original
    with _lock:
        if _original is not None:
            return True
        current = binning._find_binning_thresholds
        if not sklearn.__version__.startswith(CHECKED) or (
            "sample_weight" not in inspect.signature(current).parameters
        ):
            return False
        _original = current
        binning._find_binning_thresholds = thresholds
        return True
