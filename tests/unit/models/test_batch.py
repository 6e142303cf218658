"""The batch model: training guards, column matching by name, probabilities back on scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from riverwatch.models.batch import (
    POS_WEIGHT,
    Bagged,
    BatchClassifier,
    make_estimator,
    predict_batch,
    train_batch,
)
from riverwatch.models.features import FEATURE_NAMES
from tests.support.builders import labeled_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return labeled_frame()


def test_training_refuses_a_single_class_or_mismatched_columns() -> None:
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="single class"):
        train_batch(X, np.zeros(10), ("a", "b"))
    with pytest.raises(ValueError, match="expected"):
        train_batch(X, np.arange(10) % 2, ("a",))


def test_probabilities_are_on_the_fraud_scale_not_the_weighted_one(frame: pd.DataFrame) -> None:
    names = list(FEATURE_NAMES)
    cut = frame["epoch"].quantile(0.7)
    train, test = frame[frame["epoch"] < cut], frame[frame["epoch"] >= cut]
    model = train_batch(train[names].to_numpy(), train["label"].to_numpy(), names)
    p = predict_batch(model, test[names].to_numpy())
    assert ((p >= 0) & (p <= 1)).all()
    # class weights inflate the odds 10x; undone, the mean is near the fraud rate
    rate = test["label"].mean()
    assert rate / 3 < p.mean() < rate * 3
    raw = model.estimator.predict_proba(test[names].to_numpy())[:, 1]
    assert raw.mean() > p.mean()
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(p, kind="stable"))
    assert np.allclose(model.predict_proba(test[names].to_numpy())[:, 1], p)
    assert model.describe()["pos_weight"] == POS_WEIGHT and model.describe()["n_iter"] > 0


def test_columns_are_matched_by_name_and_missing_features_are_nan() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3))
    y = (X[:, 1] + 0.1 * rng.normal(size=3000) > 1.8).astype(int)
    model = train_batch(X, y, ("a", "b", "c"))
    want = predict_batch(model, X)
    reordered = predict_batch(model, X[:, [2, 0, 1]], names=("c", "a", "b"))
    assert np.array_equal(want, reordered)
    # a newer feature list: extra columns ignored, a dropped one treated as missing
    grown = np.column_stack([X, np.ones(len(X))])
    assert np.array_equal(predict_batch(model, grown, names=("a", "b", "c", "new")), want)
    lost = predict_batch(model, X[:, :2], names=("a", "b"))
    assert lost.shape == want.shape and np.isfinite(lost).all()
    assert predict_batch(model, np.empty((0, 3))).shape == (0,)


def test_the_same_data_gives_the_same_model() -> None:
    assert make_estimator().get_params()["random_state"] == 0
    rng = np.random.default_rng(5)
    X = rng.normal(size=(12_000, 2))  # > 10k rows: early stopping draws a validation split
    y = (X[:, 0] > 2).astype(int)
    a, b = train_batch(X, y, ("x", "y")), train_batch(X, y, ("x", "y"))
    assert isinstance(a, BatchClassifier)
    assert np.array_equal(predict_batch(a, X), predict_batch(b, X))


def test_members_are_early_stopped_apart_and_served_as_their_mean_log_odds() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12_000, 2))  # early stopping on: each member draws its own split
    y = (X[:, 0] + 0.5 * rng.normal(size=12_000) > 2).astype(int)
    bag = train_batch(X, y, ("x", "y"), members=3, max_iter=30)
    assert isinstance(bag.estimator, Bagged) and len(bag.estimator.members) == 3
    alone = [train_batch(X, y, ("x", "y"), random_state=i, max_iter=30) for i in range(3)]
    raw = np.array([m.estimator.predict_proba(X)[:, 1] for m in alone])
    assert not np.array_equal(raw[0], raw[1])  # the splits differ, so do the members
    logit = np.log(raw / (1 - raw)).mean(axis=0)
    want = 1 / (1 + np.exp(-logit))
    assert np.allclose(bag.estimator.predict_proba(X)[:, 1], want)
    # the class weighting is undone on the average as on one model
    assert np.allclose(predict_batch(bag, X), want / (want + (1 - want) * POS_WEIGHT))
    d = bag.describe()
    assert d["estimator"] == "Bagged" and d["params"]["members"] == 3
    assert d["n_iter"] == sum(int(m.estimator.n_iter_) for m in alone)


def test_members_without_early_stopping_would_be_equal_so_one_is_fitted() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2000, 2))  # under 10,000 rows: early stopping is off by default
    y = (X[:, 0] > 1.5).astype(int)
    model = train_batch(X, y, ("x", "y"), members=4, max_iter=10)
    assert isinstance(model.estimator, HistGradientBoostingClassifier)
