"""Calibrated fraud scores: a monotone map from a model's score to the fraud rate behind it.

Decisions compare the combined score with probabilities (review at 0.5, decline at 0.8) and
the monitor's CBPE (``monitors.cbpe``) sums scores as expected frauds, so a score must be a
probability. Neither the batch model (early stopping on fraud-weighted trees, the weighting
undone in closed form, then refitted with recency weights) nor a linear blend of two models is
one. At training time each model artifact gets a :class:`Calibration`, fitted on its hold-out
(matured labels the batch model was not fitted on; ``models.training``):

* ``batch``: the batch model's score;
* ``combined``: the blend ``w * batch + (1 - w) * online`` at the champion's own blend weight
  ``w`` (``weight``), with the online scores recorded when the hold-out was scored.

Candidates (:data:`METHODS`): ``identity``, ``platt`` (a logistic regression on the score's
logit: two numbers) and ``isotonic`` (the pool-adjacent-violators step function, interpolated
between its steps). The one with the lowest log-loss out of fold wins (:func:`fit`: folds are
contiguous blocks of the hold-out in time, each predicted by the map fitted on the others),
then is refitted on the whole hold-out.

Every map is made *strictly* increasing (:data:`TIE`): ``(1 - TIE) * f(p) + TIE * p``. An
isotonic step would otherwise tie every score of a step, and a saturated sigmoid every score
near 1, which loses ranking (AUC, AP, Card Precision@k); strictly increasing, the calibrated
score ranks every row as the raw score does, so those metrics do not change at all.

>>> rng = np.random.default_rng(0)
>>> truth = rng.uniform(0, 1, 4000)
>>> y = (rng.uniform(0, 1, 4000) < truth).astype(int)
>>> raw = truth ** 3                        # ranks right, far too low as a probability
>>> cal = fit(raw, y)
>>> cal.method != "identity", brier(y, cal(raw)) < brier(y, raw)
(True, True)
>>> bool(np.all(np.diff(cal(np.linspace(0, 1, 101))) > 0))   # strictly increasing
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

METHODS = ("identity", "platt", "isotonic")
TIE = 1e-3  # weight of the raw score in every map: strictly increasing (see the module)
CLIP = 1e-6  # scores are clipped to [CLIP, 1 - CLIP] in the log-loss and to fit Platt's map
TINY = 1e-300  # ... and to [TINY, 1 - 1e-300] to apply it: it extrapolates, keeping the ranking
FOLDS = 5
MIN_FRAUDS = 10  # fewer frauds than this on the hold-out: no calibration is fitted


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map from a score in [0, 1] to a fraud probability.

    ``platt``: ``sigmoid(a * logit(p) + b)``; ``isotonic``: ``np.interp(p, xs, ys)`` (clipped
    at both ends, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts);
    ``identity``: ``p``. ``loss`` holds the out-of-fold log-loss of every candidate.
    """

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    loss: dict[str, float] = field(default_factory=dict)

    def __call__(self, p: Any) -> np.ndarray:
        """The calibrated probabilities of the scores ``p`` (NaN stays NaN)."""
        p = np.asarray(p, dtype=float)
        if self.method == "platt":
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                f = 1.0 / (1.0 + np.exp(-(self.a * _logit(p, TINY) + self.b)))
        elif self.method == "isotonic":
            f = np.where(np.isnan(p), np.nan, np.interp(p, self.xs, self.ys))
        else:
            return p.copy()
        return np.asarray((1.0 - TIE) * f + TIE * np.clip(p, 0.0, 1.0), dtype=float)

    def describe(self) -> dict[str, Any]:
        """JSON-able: the method, its parameters' size and the candidates' log-loss."""
        loss = {k: v if math.isfinite(v) else None for k, v in self.loss.items()}  # JSON
        out: dict[str, Any] = {"method": self.method, "log_loss": loss}
        if self.method == "platt":
            out.update(a=self.a, b=self.b)
        elif self.method == "isotonic":
            out["steps"] = len(self.xs)
        return out


@dataclass(frozen=True)
class Calibration:
    """What a batch-model artifact carries: its own score's map and the combined score's.

    ``combined`` holds for the blend weight ``weight`` only (a scorer serving another weight,
    ``RIVERWATCH_BLEND=fixed``, serves the combined score uncalibrated); None when the
    hold-out had no online scores to blend with.
    """

    batch: Calibrator
    combined: Calibrator | None = None
    weight: float | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able, for the registry's ``info``."""
        return {
            "batch": self.batch.describe(),
            "combined": None if self.combined is None else self.combined.describe(),
            "weight": self.weight,
        }


def _logit(p: np.ndarray, clip: float = CLIP) -> np.ndarray:
    q = np.clip(p, clip, 1.0 - clip)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=float)


def log_loss(y: Any, p: Any) -> float:
    """Mean negative log-likelihood of labels ``y`` under probabilities ``p`` (clipped)."""
    yy, q = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), CLIP, 1 - CLIP)
    return float(-np.mean(yy * np.log(q) + (1 - yy) * np.log1p(-q)))


def brier(y: Any, p: Any) -> float:
    """The Brier score: mean squared difference between probability and outcome."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def ece(y: Any, p: Any, bins: int = 15) -> float:
    """Expected calibration error: over ``bins`` equal-width score bins, the row-weighted mean
    of ``|mean score - fraud rate|``.

    >>> ece([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0]), ece([0, 1], [0.5, 0.5])
    (0.0, 0.0)
    >>> ece([0, 0], [0.9, 0.9])
    0.9
    """
    yy, pp = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    if len(pp) == 0:
        return math.nan
    idx = np.minimum((pp * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, pp, bins) - np.bincount(idx, yy, bins))
    return float(gap.sum() / n.sum())


def _fit_one(method: str, p: np.ndarray, y: np.ndarray, loss: dict[str, float]) -> Calibrator:
    if method == "platt":
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(p)[:, None], y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if not a > 0:  # a score that ranks frauds lower: no monotone map helps; leave it
            return Calibrator(loss=loss)
        return Calibrator("platt", a, b, loss=loss)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        xs, ys = iso.X_thresholds_, iso.y_thresholds_
        return Calibrator("isotonic", xs=tuple(map(float, xs)), ys=tuple(map(float, ys)),
                          loss=loss)  # fmt: skip
    return Calibrator(loss=loss)


def _out_of_fold(method: str, p: np.ndarray, y: np.ndarray, folds: int) -> float:
    """Log-loss of ``method`` on each contiguous fold, fitted on the other folds; inf when a
    fold's complement holds a single class (the method cannot be fitted there)."""
    pred = np.empty(len(p))
    for part in np.array_split(np.arange(len(p)), folds):
        rest = np.ones(len(p), dtype=bool)
        rest[part] = False
        if len(np.unique(y[rest])) < 2:
            return math.inf
        pred[part] = _fit_one(method, p[rest], y[rest], {})(p[part])
    return log_loss(y, pred)


def fit(p: Any, y: Any, folds: int = FOLDS) -> Calibrator:
    """The calibrator of scores ``p`` for labels ``y`` (rows in time order): the method of
    :data:`METHODS` with the lowest out-of-fold log-loss, refitted on every row.

    Identity when the rows hold fewer than :data:`MIN_FRAUDS` frauds or no legitimate row.
    """
    pp, yy = np.asarray(p, dtype=float), np.asarray(y).astype(int)
    ok = np.isfinite(pp)
    pp, yy = np.clip(pp[ok], 0.0, 1.0), yy[ok]
    if yy.sum() < MIN_FRAUDS or yy.all():
        return Calibrator()
    loss = {m: _out_of_fold(m, pp, yy, folds) for m in METHODS}
    best = min(METHODS, key=lambda m: loss[m])  # a tie keeps the simpler (METHODS' order)
    return _fit_one(best, pp, yy, loss)


def fit_calibration(
    batch: Any, online: Any, y: Any, weight: float | None, folds: int = FOLDS
) -> Calibration:
    """The :class:`Calibration` of a hold-out: its batch scores, the online scores recorded
    there (NaN where none) and its labels, rows in time order. The combined map is fitted on
    the rows with an online score, at ``weight`` (None: no combined map)."""
    b, on, yy = (np.asarray(v, dtype=float) for v in (batch, online, y))
    combined = None
    if weight is not None:
        has = np.isfinite(on)
        combined = fit(weight * b[has] + (1 - weight) * on[has], yy[has], folds)
    return Calibration(fit(b, yy, folds), combined, weight)
