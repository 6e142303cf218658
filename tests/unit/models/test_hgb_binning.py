"""The batch model's bin edges in one sort per feature (models/hgb_binning.py) are scikit-learn's
own: the same numbers on every kind of column, and so the same fitted model."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.ensemble._hist_gradient_boosting import binning

from riverwatch.models import hgb_binning
from riverwatch.models.batch import predict_batch, train_batch

pytestmark = pytest.mark.skipif(
    not hgb_binning.install(), reason=f"not installed on scikit-learn {sklearn.__version__}"
)


def columns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    normal = rng.normal(size=n)
    normal[rng.random(n) < 0.05] = np.nan
    return {
        "continuous, some missing": normal,
        "rounded (ties)": np.round(rng.exponential(size=n), 2),
        "few values (midpoints)": rng.integers(0, 5, n).astype(float),
        "one value": np.full(n, 3.0),
        "huge values (clipped)": np.where(rng.random(n) < 0.5, 1e305, rng.normal(size=n)),
    }


@pytest.mark.parametrize("n", [300, 5_000, 60_000])
def test_the_edges_are_scikit_learns_to_the_last_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    original = hgb_binning._original
    assert binning._find_binning_thresholds is hgb_binning.thresholds and original is not None
    for weights in (rng.exponential(size=n), np.where(rng.random(n) < 0.2, 0.0, 1.0), None):
        for name, col in columns(n, rng).items():
            want = original(col.copy(), 255, None if weights is None else weights.copy())
            got = hgb_binning.thresholds(col.copy(), 255, weights)
            assert want.dtype == got.dtype and np.array_equal(want, got), name


def test_a_weighted_fit_is_the_same_model_as_with_scikit_learns_binning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(20_000, 4))
    X[:, 3] = np.round(X[:, 3], 1)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=len(X)) > 2.2).astype(int)
    w = rng.exponential(size=len(X))
    fast = predict_batch(train_batch(X, y, ("a", "b", "c", "d"), sample_weight=w), X)
    monkeypatch.setattr(binning, "_find_binning_thresholds", hgb_binning._original)
    slow = predict_batch(train_batch(X, y, ("a", "b", "c", "d"), sample_weight=w), X)
    assert binning._find_binning_thresholds is hgb_binning._original  # install() kept off
    assert np.array_equal(fast, slow)
