"""Small batches through treelite: the same scores as scikit-learn's, or scikit-learn itself."""

from __future__ import annotations

import gc
import logging
from typing import Any

import numpy as np
import pytest

from riverwatch.models import small_batches
from riverwatch.models.batch import predict_batch, train_batch


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.lognormal(size=(12_000, 4))
    y = (X[:, 0] + X[:, 1] * rng.random(len(X)) > 5.0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan  # the trees' learned side for missing values
    return X, y


class _Counted:
    """scikit-learn's log-odds, counting the rows it was asked for."""

    def __init__(self, est: Any) -> None:
        self.est, self.rows = est, 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.rows += len(X)
        return np.asarray(self.est.decision_function(X), dtype=float)


@pytest.mark.parametrize("members", [1, 3])
def test_small_batches_score_as_one_large_batch(members: int) -> None:
    X, y = _data(1)
    model = train_batch(X, y, ("a", "b", "c", "d"), members=members, max_iter=40)
    rows = X[:2000]
    large = predict_batch(model, rows)  # 2,000 rows: scikit-learn
    small = np.concatenate([predict_batch(model, rows[i : i + 7]) for i in range(0, 2000, 7)])
    assert np.allclose(small, large, rtol=0, atol=1e-12)
    assert not np.allclose(small, small[0])  # the rows do score apart


def test_treelite_serves_a_model_after_its_first_small_batch() -> None:
    X, y = _data(2)
    est = train_batch(X, y, ("a", "b", "c", "d"), max_iter=20).estimator
    exact = _Counted(est)
    first = small_batches.log_odds(est, X[:5], exact)
    assert exact.rows > 5  # the batch and the probe rows, checked against treelite
    checked = exact.rows
    again = small_batches.log_odds(est, X[:5], exact)
    assert exact.rows == checked and np.allclose(again, first, rtol=0, atol=1e-12)
    small_batches.log_odds(est, X[: small_batches.SMALL], exact)  # not small: scikit-learn
    assert exact.rows == checked + small_batches.SMALL


def test_a_model_treelite_reads_wrongly_is_served_by_scikit_learn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = _data(3)
    est = train_batch(X, y, ("a", "b", "c", "d"), max_iter=20).estimator
    right = small_batches._gtil
    monkeypatch.setattr(small_batches, "_gtil", lambda m, rows: right(m, rows) + 1e-6)
    exact = _Counted(est)
    with caplog.at_level(logging.WARNING, logger=small_batches.__name__):
        got = small_batches.log_odds(est, X[:5], exact)
    assert "differ by 1e-06" in caplog.text
    assert np.array_equal(got, est.decision_function(X[:5]))
    before = exact.rows
    assert np.array_equal(small_batches.log_odds(est, X[:5], exact), got)
    assert exact.rows == before + 5  # scikit-learn from then on


def test_a_model_treelite_cannot_import_is_served_by_scikit_learn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import treelite.sklearn

    def refuse(est: Any) -> Any:
        raise treelite.TreeliteError("unsupported model")

    monkeypatch.setattr(treelite.sklearn, "import_model", refuse)
    X, y = _data(4)
    est = train_batch(X, y, ("a", "b", "c", "d"), max_iter=20).estimator
    exact = _Counted(est)
    with caplog.at_level(logging.WARNING, logger=small_batches.__name__):
        got = small_batches.log_odds(est, X[:3], exact)
    assert "unsupported model" in caplog.text
    assert np.array_equal(got, est.decision_function(X[:3]))
    small_batches.log_odds(est, X[:3], exact)
    assert exact.rows == 3 + 5 + 3  # the first batch with the probes, then scikit-learn


def test_small_batches_leave_no_garbage_for_the_collector() -> None:
    """The scorer frees what it allocates by reference counting; a call that left reference
    cycles behind would set the collector off on a steady stream (treelite's own wrapper
    leaves 6 objects a call)."""
    X, y = _data(5)
    model = train_batch(X, y, ("a", "b", "c", "d"), max_iter=20)
    predict_batch(model, X[:4])  # imports and checks the model
    gc.collect()
    gc.disable()
    try:
        for i in range(200):
            predict_batch(model, X[i : i + 4])
        assert gc.collect() == 0
    finally:
        gc.enable()
