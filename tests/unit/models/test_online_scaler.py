"""The online learner's scaler forgets (issue 17): statistics of the features' warm-up fade."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from river import preprocessing

from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES


def _rows(values: np.ndarray) -> list[dict[str, float]]:
    return [{"a": float(v), "b": float(v) ** 2} for v in values]


def test_without_a_half_life_it_is_rivers_scaler_exactly() -> None:
    rng = np.random.default_rng(0)
    ours, river = online.DecayingScaler(half_life=None), preprocessing.StandardScaler()
    for x in _rows(rng.lognormal(size=500)):
        ours.learn_one(x)
        river.learn_one(x)
    for f in ("a", "b"):
        assert ours.means[f] == pytest.approx(river.means[f], rel=1e-12)
        assert ours.vars[f] == pytest.approx(river.vars[f], rel=1e-12)


def test_its_statistics_are_the_exponentially_weighted_mean_and_variance() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(3.0, 2.0, size=400)
    s = online.DecayingScaler(half_life=50.0)
    for x in _rows(v):
        s.learn_one(x)
    w = 0.5 ** (np.arange(len(v))[::-1] / 50.0)  # the newest row weighs 1
    mean = np.average(v, weights=w)
    assert s.means["a"] == pytest.approx(mean, rel=1e-9)
    assert s.vars["a"] == pytest.approx(np.average((v - mean) ** 2, weights=w), rel=1e-9)
    assert s.counts["a"] == pytest.approx(w.sum(), rel=1e-9)


def test_the_models_scaler_forgets_a_filling_window() -> None:
    """A 30-day count fills for a month, then holds: the model's scaler must describe today's
    rows, not the ramp (River's StandardScaler, the scaler before, fails this)."""
    n = int(5 * online.SCALER_HALF_LIFE)  # the steady rows: five half-lives
    ramp = np.linspace(0.0, 60.0, n)  # the window filling
    steady = np.full(n, 60.0) + np.random.default_rng(2).normal(0.0, 2.0, n)
    scaler = online.make_model().steps["StandardScaler"]
    for v in np.concatenate([ramp, steady]).tolist():
        scaler.learn_one({"card_n_30d": v})
    assert scaler.means["card_n_30d"] == pytest.approx(60.0, abs=1.5)
    assert scaler.vars["card_n_30d"] ** 0.5 < 6.0  # River's: mean 45, deviation 19


def test_its_state_is_bounded_whatever_it_learns() -> None:
    s = online.DecayingScaler(half_life=10.0)
    for x in _rows(np.arange(5_000.0)):
        s.learn_one(x)
    assert len(s.means) == len(s.vars) == len(s.counts) == 2
    assert s.counts["a"] <= 1.0 / (1.0 - 0.5 ** (1 / 10.0)) + 1e-9  # the weights' limit


def test_a_snapshot_keeps_the_scaler_and_an_old_snapshot_still_scores() -> None:
    m = online.make_model()
    X = np.random.default_rng(4).lognormal(size=(20, len(FEATURE_NAMES)))
    for row in X:
        online.learn(m, dict(zip(FEATURE_NAMES, row, strict=True)), int(row[0] > 1.5))
    back, _ = online.load_snapshot(online.dump_snapshot(m, {}))
    scaler = back.steps["StandardScaler"]
    assert isinstance(scaler, online.DecayingScaler)
    assert scaler.half_life == online.SCALER_HALF_LIFE
    assert np.array_equal(online.score_batch(back, X), online.score_batch(m, X))
    # a snapshot written before (River's own scaler) loads and scores as it did
    old = preprocessing.StandardScaler() | m.steps["LogisticRegression"]
    for row in X:
        old.steps["StandardScaler"].learn_one(dict(zip(FEATURE_NAMES, row, strict=True)))
    blob = pickle.dumps({"river": online.river.__version__, "meta": {}, "model": old})
    loaded, _ = online.load_snapshot(blob)
    assert np.isfinite(online.score_batch(loaded, X)).all()


def test_a_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError):
        online.DecayingScaler(half_life=0.0)
