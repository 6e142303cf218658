"""No NaN or infinity out of features or scores; a non-finite score fails closed (pure)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from prometheus_client import REGISTRY

from riverwatch.models import online
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import (
    AMOUNT_CAP,
    FEATURE_INDEX,
    FEATURE_NAMES,
    FeatureSpec,
    vector,
)
from riverwatch.models.features_replay import replay
from riverwatch.models.livestats import batch_stats, summarize
from riverwatch.models.scoring import Thresholds, score_matrix
from riverwatch.models.serving import BatchModel, Models

SPEC = FeatureSpec(3600, 7)


class Const:
    """A stand-in batch estimator answering a fixed probability."""

    def __init__(self, p: float):
        self.p = p

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))


def nonfinite(model: str) -> float:
    return REGISTRY.get_sample_value("riverwatch_nonfinite_scores_total", {"model": model}) or 0.0


def steps(amounts: list[float]) -> list[list[float]]:
    card: dict[int, list[float]] = {}
    term: dict[int, list[float]] = {}
    return [FeatureSet().step(SPEC, 60.0 * i, a, {}, card, term)[0] for i, a in enumerate(amounts)]


def test_two_amounts_near_the_float_maximum_on_one_card_give_finite_features() -> None:
    last = steps([1e308, 1e308])[-1]
    assert all(math.isfinite(v) for v in last)
    assert last[FEATURE_INDEX["card_n_1d"]] == 2.0
    assert last[FEATURE_INDEX["amount"]] == AMOUNT_CAP
    assert last[FEATURE_INDEX["card_mean_1d"]] == AMOUNT_CAP


def test_an_amount_the_validator_allows_repeated_many_times_stays_finite_and_exact() -> None:
    last = steps([1e9] * 5000)[-1]
    assert all(math.isfinite(v) for v in last)
    assert last[FEATURE_INDEX["card_mean_30d"]] == pytest.approx(1e9)
    assert last[FEATURE_INDEX["card_ratio_7d"]] == pytest.approx(1.0)


def test_counters_already_overflowing_in_the_store_give_finite_features() -> None:
    card = {0: [2.0, 1.7e308], 1: [1.0, 1.7e308]}  # as a store written before the cap holds
    x = vector(SPEC, 3600.0, 5.0, card, {0: [1.0, float("nan")]})
    assert all(math.isfinite(v) for v in x)


def test_offline_replay_counts_the_same_capped_amounts() -> None:
    out = replay(SPEC, [("tx", "a", 0.0, "c", "t", 1e308), ("tx", "b", 60.0, "c", "t", 1e308)])
    assert out["b"] == steps([1e308, 1e308])[-1]


def test_huge_features_score_finite_and_the_json_has_no_null_score() -> None:
    X = np.asarray(steps([1e308, 1e308]))
    X = np.vstack([X, np.full(len(FEATURE_NAMES), np.inf), np.full(len(FEATURE_NAMES), np.nan)])
    out = score_matrix(Models(online.make_model()), X, Thresholds())
    for o in out:
        assert math.isfinite(o["score"]) and math.isfinite(o["online_score"])
        assert all(
            math.isfinite(r["value"]) and math.isfinite(r["contribution"]) for r in o["reasons"]
        )
        assert orjson.loads(orjson.dumps(o))["score"] is not None


def test_a_nan_online_model_fails_closed_to_review_and_is_counted() -> None:
    model = online.make_model()
    model.steps["LogisticRegression"]._weights["amount"] = float("nan")
    before = nonfinite("online")
    out = score_matrix(Models(model), np.ones((3, len(FEATURE_NAMES))), Thresholds())
    assert [o["decision"] for o in out] == ["review"] * 3
    assert all(math.isfinite(o["score"]) for o in out)
    assert nonfinite("online") == before + 3


def test_a_nan_batch_champion_fails_closed_to_review_and_a_nan_shadow_decides_nothing() -> None:
    def batch(p: float, version: str) -> BatchModel:
        return BatchModel(version, Const(p), FEATURE_NAMES)

    X = np.zeros((2, len(FEATURE_NAMES)))
    nan = float("nan")
    out = score_matrix(Models(online.make_model(), champion=batch(nan, "b1")), X, Thresholds())
    assert [o["decision"] for o in out] == ["review", "review"]
    assert all(math.isfinite(o["batch_score"]) for o in out)
    out = score_matrix(Models(online.make_model(), challenger=batch(nan, "c1")), X, Thresholds())
    assert [o["decision"] for o in out] == ["approve", "approve"]
    assert all(math.isfinite(o["shadow_score"]) for o in out)


def test_live_stats_never_raise_on_a_non_finite_score() -> None:
    stats = batch_stats([float("nan"), float("inf"), 0.3], ["review"] * 3, [1.0], alerts=0)
    assert stats["n"] == 3.0 and stats["nonfinite"] == 2.0 and stats["s:3"] == 1.0
    assert summarize([stats], 1)["scored"] == 3.0
