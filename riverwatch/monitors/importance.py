"""Permutation importance of a model's features: how much its AP falls when one is shuffled.

The monitor weights per-feature drift by it (a drifted feature the champion hardly uses
matters less than one it leans on). Written here rather than with
``sklearn.inspection.permutation_importance``, which insists on an estimator with ``fit``:
the registry hands back a fitted wrapper (``models.batch.BatchClassifier``) with
``predict_proba`` only.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2000, 2))
>>> y = (X[:, 0] + 0.1 * rng.normal(size=2000) > 1.5).astype(int)
>>> imp = permutation_importance(lambda m: m[:, 0], X, y, ["useful", "noise"])
>>> imp["useful"] > 0.5 > imp["noise"] == 0.0
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from riverwatch.models.evaluation import average_precision


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    repeats: int = 3,
    max_rows: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean AP lost per shuffled column (at least 0), on at most ``max_rows`` rows."""
    rng = np.random.default_rng(seed)
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
    if len(X) > max_rows:
        pick = rng.choice(len(X), max_rows, replace=False)
        X, y = X[pick], y[pick]
    base = average_precision(y, predict(X))
    out = {}
    for j, name in enumerate(names):
        lost = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            lost.append(base - average_precision(y, predict(shuffled)))
        out[name] = max(float(np.mean(lost)), 0.0)
    return out
