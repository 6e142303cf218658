"""Calibrated scores (issue 17): the maps, their fit at training time, the artifact that carries
them (old artifacts still load) and the scoring path that applies them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from riverwatch.core.artifacts import dump_artifact, load_artifact
from riverwatch.core.names import Names
from riverwatch.models import calibration as cal
from riverwatch.models import online
from riverwatch.models.batch import BatchClassifier, predict_batch
from riverwatch.models.evaluation import auc_roc, average_precision
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.promotion import DAY_S, TrainConfig
from riverwatch.models.scoring import Thresholds, score_matrix
from riverwatch.models.serving import BatchModel, Models
from riverwatch.models.training import train_and_evaluate
from riverwatch.stores.registry import Registry
from riverwatch.stores.registry_meta import MemoryMeta
from tests.support.builders import START, labeled_frame

T0 = START.timestamp()
CFG = TrainConfig(train_days=14, holdout_days=7, delay_days=7, refit=True, half_life_days=7)


def skewed(n: int, seed: int, power: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that rank right but are no probabilities (``truth ** power``), and labels."""
    rng = np.random.default_rng(seed)
    truth = np.clip(rng.beta(0.3, 6.0, n), 1e-3, 1)  # mostly low, as fraud probabilities are
    return truth**power, (rng.uniform(size=n) < truth).astype(int)


@pytest.mark.parametrize("method", cal.METHODS)
def test_every_map_is_strictly_increasing_so_the_ranking_is_kept(method: str) -> None:
    raw, y = skewed(5000, 1)
    c = cal._fit_one(method, raw, y, {})
    assert c.method == method
    grid = np.r_[0.0, np.geomspace(1e-9, 1.0, 400)]
    assert np.all(np.diff(c(grid)) > 0)
    p = c(raw)
    assert ((p >= 0) & (p <= 1)).all()
    assert np.array_equal(np.argsort(p, kind="stable"), np.argsort(raw, kind="stable"))
    assert auc_roc(y, p) == pytest.approx(auc_roc(y, raw), abs=1e-12)
    assert average_precision(y, p) == pytest.approx(average_precision(y, raw), abs=1e-12)
    assert np.isnan(c(np.array([np.nan, 0.5]))[0])  # NaN stays NaN (scoring fails closed)


def test_the_chosen_map_calibrates_scores_it_was_not_fitted_on() -> None:
    raw, y = skewed(20_000, 2)
    c = cal.fit(raw[:10_000], y[:10_000])
    assert c.method != "identity" and set(c.loss) == set(cal.METHODS)
    assert c.loss[c.method] == min(c.loss.values())
    fresh, yf = raw[10_000:], y[10_000:]
    assert cal.ece(yf, c(fresh)) < 0.01 < 0.03 < cal.ece(yf, fresh)
    assert cal.brier(yf, c(fresh)) < cal.brier(yf, fresh)
    # scores that already are probabilities stay (about) as they are
    good, yg = skewed(20_000, 3, power=1.0)
    c = cal.fit(good[:10_000], yg[:10_000])
    assert cal.ece(yg[10_000:], c(good[10_000:])) < 0.01


def test_too_few_frauds_or_a_single_class_give_the_identity() -> None:
    p = np.linspace(0, 1, 100)
    y = np.zeros(100, dtype=int)
    y[-5:] = 1  # fewer than MIN_FRAUDS
    assert cal.fit(p, y).method == "identity"
    assert cal.fit(p, np.ones(100)).method == "identity"
    assert np.array_equal(cal.Calibrator()(p), p)


def test_the_combined_map_is_fitted_at_the_blend_weight_on_rows_with_an_online_score() -> None:
    b, y = skewed(6000, 4)
    on = np.where(np.arange(6000) % 4 == 0, np.nan, b * 0.5)
    c = cal.fit_calibration(b, on, y, weight=0.7)
    assert c.weight == 0.7 and c.combined is not None and c.batch.method != "identity"
    has = np.isfinite(on)
    want = cal.fit(0.7 * b[has] + (1 - 0.7) * on[has], y[has])
    assert c.combined == want
    assert cal.fit_calibration(b, on, y, weight=None).combined is None
    orjson.dumps(c.describe())  # JSON for the registry's info (no NaN, no infinity)


@pytest.fixture(scope="module")
def trained() -> tuple[pd.DataFrame, object]:
    frame = labeled_frame()
    # an online score that knows something: recorded scores are what the blend is fitted on
    rng = np.random.default_rng(0)
    frame["online_score"] = np.clip(0.02 + 0.3 * frame["label"] * rng.uniform(size=len(frame)),
                                    0, 1)  # fmt: skip
    return frame, train_and_evaluate(frame, T0 + 38 * DAY_S, CFG)


def test_training_fits_the_maps_on_the_hold_out_and_the_artifact_keeps_them(trained) -> None:  # type: ignore[no-untyped-def]
    frame, res = trained
    model = res.challenger
    assert res.evaluated and isinstance(model, BatchClassifier)
    c = model.calibration
    assert c is not None and c.combined is not None and c.weight == res.blend_weight
    assert model.judged is not None and model.judged.calibration is c  # the judged self's map
    w = res.windows
    hold = frame[(frame["epoch"] >= w.holdout_start) & (frame["epoch"] < w.holdout_end)]
    X = hold.reindex(columns=list(FEATURE_NAMES)).to_numpy(dtype=float)
    raw = predict_batch(model.judged, X)
    assert cal.brier(hold["label"], c.batch(raw)) <= cal.brier(hold["label"], raw)
    assert model.describe()["calibration"] == c.describe()
    # persisted: the registry's artifact gives the same maps back
    reg = Registry(MemoryMeta(), Names("t-"), Path(tempfile.mkdtemp()))
    v = reg.register(model, data_window=(0, 1), holdout_window=(1, 2), metrics={},
                     features=FEATURE_NAMES, info=model.describe())  # fmt: skip
    loaded, _ = reg.load(v.name)
    assert loaded.calibration == c
    assert np.array_equal(loaded.calibration.combined(raw), c.combined(raw))


def test_an_artifact_written_before_calibration_loads_and_scores_uncalibrated(trained) -> None:  # type: ignore[no-untyped-def]
    _, res = trained
    model = res.challenger
    # what the code before calibration pickled: the same class without the field in its state
    old = BatchClassifier(model.estimator, model.features, model.pos_weight, model.trained_until)
    del old.__dict__["calibration"]
    blob, sha = dump_artifact(old, {"name": "batch-1", "features": list(FEATURE_NAMES)})
    loaded, _ = load_artifact(blob, sha)
    assert "calibration" not in loaded.__dict__ and loaded.calibration is None
    assert loaded.describe()["calibration"] is None
    X = np.ones((4, len(FEATURE_NAMES)))
    m = Models(online.make_model(), champion=BatchModel("batch-1", loaded, FEATURE_NAMES, 0.5))
    out = score_matrix(m, X, Thresholds())
    raw = predict_batch(loaded, X)
    assert [o["batch_score"] for o in out] == pytest.approx(raw.tolist())
    assert [o["score"] for o in out] == pytest.approx(
        (0.5 * raw + 0.5 * online.score_batch(m.online, X)).tolist()
    )


class Const:
    """A batch estimator answering a fixed probability, with a calibration."""

    def __init__(self, p: float, calibration: cal.Calibration | None):
        self.p, self.calibration = p, calibration

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))


def test_decisions_and_scores_read_the_calibrated_scores() -> None:
    up = cal.Calibrator("platt", a=1.0, b=3.0)  # odds x e^3: 0.3 -> ~0.9
    champ = Const(0.3, cal.Calibration(cal.Calibrator("platt", a=1.0, b=1.0), up, weight=0.8))
    shadow = Const(0.3, cal.Calibration(cal.Calibrator("platt", a=1.0, b=-1.0)))
    m = Models(online.make_model(), "1", BatchModel("batch-1", champ, FEATURE_NAMES, 0.8),
               BatchModel("batch-2", shadow, FEATURE_NAMES))  # fmt: skip
    X = np.ones((1, len(FEATURE_NAMES)))
    p_on = float(online.score_batch(m.online, X)[0])
    plain = score_matrix(m, X, Thresholds(review=0.5, decline=0.8))[0]  # the default: off
    assert (plain["batch_score"], plain["shadow_score"]) == (0.3, 0.3)
    assert plain["score"] == pytest.approx(0.8 * 0.3 + 0.2 * p_on)
    assert plain["decision"] == "approve"
    out = score_matrix(m, X, Thresholds(review=0.5, decline=0.8, calibrated=True))[0]
    assert out["batch_score"] == pytest.approx(float(champ.calibration.batch(np.array([0.3]))[0]))
    assert out["shadow_score"] < 0.3 < out["batch_score"]
    # the combined map applies to the blend of the *raw* batch score
    want = float(up(np.array([0.8 * 0.3 + 0.2 * p_on]))[0])
    assert out["score"] == pytest.approx(want) and want > 0.8
    assert out["decision"] == "decline"  # uncalibrated (0.24 + ...) it would be approved
    # another blend weight than the map was fitted at: the blend is served uncalibrated
    fixed = score_matrix(m, X, Thresholds(0.5, 0.8, 0.5, learned_blend=False, calibrated=True))[0]
    assert fixed["score"] == pytest.approx(0.5 * 0.3 + 0.5 * p_on)
    assert fixed["decision"] == "approve"
