"""The online fraud learner (River) and its snapshots.

The model follows River's shape (``learn_one`` / ``predict_proba_many``); this module adds
batch scoring over a feature matrix, per-score reasons, and versioned snapshots that refuse
to load under a different River version.

>>> import numpy as np
>>> m = make_model()
>>> X = np.array([[10.0] * len(FEATURE_NAMES)])
>>> float(score_batch(m, X)[0]) < 0.05   # the prior before any label
True
>>> m2, meta = load_snapshot(dump_snapshot(m, {"version": "1"}))
>>> meta["version"]
'1'
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import river
from river import compose, linear_model, optim, preprocessing

from riverwatch.core import unpickle
from riverwatch.core.errors import ModelError
from riverwatch.models.features import FEATURE_NAMES

# Before the first label the model answers the prior fraud rate, not 0.5: an untrained
# logistic regression would send every transaction to review. logit(0.01) ~= -4.6.
PRIOR_LOGIT = -4.6
# The scaler's memory, in labels: see DecayingScaler.
SCALER_HALF_LIFE = 50_000.0


class DecayingScaler(preprocessing.StandardScaler):
    """River's StandardScaler whose statistics forget: each label's weight halves every
    ``half_life`` labels learned after it (``None``: never, River's scaler exactly).

    Why: a feature's distribution changes while its windows fill (a 30-day window of a new
    store counts 1 day of history, then 2, ...; a terminal's fraud rate stays 0 until labels
    have arrived for a week), and a scaler that remembers every label since the start keeps
    centring and scaling today's rows by that ramp's statistics long after it has ended.

    The same Welford update as River's, with each feature's count replaced by its decayed
    weight ``W <- decay * W + 1`` (exact for exponential weights: the weighted mean and
    population variance): ``means``, ``vars`` and ``counts`` keep River's types, so
    :func:`_linear` and River's ``transform_one`` read them unchanged. O(1) per feature.

    >>> s = DecayingScaler(half_life=1.0)
    >>> for v in (0.0, 0.0, 0.0, 10.0, 10.0, 10.0):
    ...     s.learn_one({"a": v})
    >>> round(s.means["a"], 2)  # the old zeros have faded: River's mean would be 5.0
    8.89
    """

    def __init__(self, half_life: float | None = SCALER_HALF_LIFE) -> None:
        super().__init__()
        if half_life is not None and not half_life > 0:
            raise ValueError(f"half_life must be > 0 or None, got {half_life}")
        self.half_life = half_life

    def learn_one(self, x: dict[str, float]) -> None:  # type: ignore[override]
        """Update each feature's decayed weight, mean and variance with one row."""
        decay = 1.0 if self.half_life is None else 0.5 ** (1.0 / self.half_life)
        counts: Any = self.counts  # decayed weights: floats in River's Counter
        means, vars_ = self.means, self.vars
        for i, xi in x.items():
            w = counts[i] * decay + 1.0
            counts[i] = w
            old = means[i]
            means[i] = new = old + (xi - old) / w
            vars_[i] += ((xi - old) * (xi - new) - vars_[i]) / w


def make_model(
    lr: float = 0.02, l2: float = 1e-4, half_life: float | None = SCALER_HALF_LIFE
) -> compose.Pipeline:
    """DecayingScaler | LogisticRegression, starting at the prior fraud rate.

    The steps keep the names of River's StandardScaler | LogisticRegression (snapshots and
    callers that look a step up by name read either).
    """
    return compose.Pipeline(
        ("StandardScaler", DecayingScaler(half_life)),
        ("LogisticRegression", linear_model.LogisticRegression(
            optimizer=optim.SGD(lr), l2=l2, intercept_init=PRIOR_LOGIT)),
    )  # fmt: skip


def _linear(
    model: compose.Pipeline, X: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Standardized rows, weights and intercept: the model's own numbers, read directly.

    Why not ``predict_proba_many``: River converts each batch to a DataFrame and back twice
    (scaler, then regression), a fixed cost of ~1 ms that dominates small low-latency batches.
    This reproduces its arithmetic exactly (tests compare the two to 1e-12).
    """
    scaler, lr = model.steps.values()
    means = np.array([scaler.means.get(f, 0.0) for f in names])
    stds = np.array([scaler.vars.get(f, 0.0) for f in names]) ** 0.5
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite inputs: see models.scoring
        z = X - means
        np.divide(z, stds, where=stds > 0, out=z)  # River leaves zero-variance columns centred
    w = np.array([lr._weights.get(f, 0.0) for f in names])
    return z, w, float(lr.intercept)


def score_batch(
    model: compose.Pipeline, X: np.ndarray, names: Sequence[str] = FEATURE_NAMES
) -> np.ndarray:
    """Fraud probabilities for each row of ``X``, whose columns are ``names``.

    A feature the model has not learned yet (a new attribute) weighs 0 until it does.
    """
    if len(X) == 0:
        return np.empty(0)
    return _probability(*_linear(model, np.asarray(X, dtype=float), names))


def _probability(z: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    # exp(-log(1 + exp(-t))), i.e. 1 / (1 + exp(-t)) without its overflow for a huge negative
    # logit. NaN stays NaN here: models.scoring counts it and fails closed.
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(np.exp(-np.logaddexp(0.0, -(z @ w + b))), dtype=float)


def explained(
    model: compose.Pipeline, X: np.ndarray, names: Sequence[str] = FEATURE_NAMES, k: int = 3
) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
    """:func:`score_batch` and :func:`reasons` of the same rows, reading the model once (the
    scorer's per-batch cost: each read builds three arrays from the model's dicts).

    >>> m = warmed(np.array([[1.0] * len(FEATURE_NAMES), [50.0] * len(FEATURE_NAMES)]), [0, 1])
    >>> X = np.array([[3.0] * len(FEATURE_NAMES)])
    >>> p, why = explained(m, X)
    >>> bool((p == score_batch(m, X)).all()), why == reasons(m, X)
    (True, True)
    """
    if len(X) == 0:
        return np.empty(0), []
    z, w, b = _linear(model, np.asarray(X, dtype=float), names)
    return _probability(z, w, b), _top(z, w, names, k)


def learn(model: compose.Pipeline, x: dict[str, float], y: int) -> None:
    """Learn one labelled feature row (River's learn_one)."""
    model.learn_one(x, bool(y))


def warm_window(newest_epoch: float | None, days: float) -> tuple[float, float] | None:
    """The event-time window ``[start, end]`` (both ends included) a reset re-learns.

    It ends at the newest labeled event and spans ``days``; None when there is nothing to
    re-learn (no label seen yet, or ``days == 0``: the reset model starts from the prior).

    >>> warm_window(10 * 86_400.0, 3)
    (604800.0, 864000.0)
    >>> warm_window(10 * 86_400.0, 0) is None, warm_window(None, 3) is None
    (True, True)
    """
    if newest_epoch is None or days <= 0:
        return None
    return newest_epoch - days * 86_400.0, newest_epoch


def warmed(X: np.ndarray, y: Any, names: Sequence[str] = FEATURE_NAMES) -> compose.Pipeline:
    """A fresh :func:`make_model` that learned each row of ``X`` with its label, in row order.

    Columns of ``X`` are ``names``. A NaN feature (a row stored before that feature
    existed) is left out of the row, as River expects of a missing feature, rather than
    learned: one NaN would turn the scaler's mean into NaN for good. Costs one
    ``learn_one`` (~10 µs) per row.

    >>> X = np.array([[1.0] * len(FEATURE_NAMES), [50.0] * len(FEATURE_NAMES)])
    >>> m = warmed(X, [0, 1])
    >>> bool(score_batch(m, X[1:])[0] > score_batch(make_model(), X[1:])[0])
    True
    >>> X[0, 0] = np.nan
    >>> bool(np.isfinite(score_batch(warmed(X, [0, 1]), X[1:])).all())
    True
    """
    model = make_model()
    for row, label in zip(np.asarray(X, dtype=float), y, strict=True):
        x = {f: float(v) for f, v in zip(names, row, strict=True) if not np.isnan(v)}
        learn(model, x, int(label))
    return model


def reasons(
    model: compose.Pipeline, X: np.ndarray, k: int = 3, names: Sequence[str] = FEATURE_NAMES
) -> list[list[tuple[str, float]]]:
    """Top-k features pushing each score up: coefficient x standardized value.

    Exact for this linear model (the logit is the sum of these terms plus the intercept), so
    the reasons are honest rather than a post-hoc approximation.
    """
    if len(X) == 0:
        return []
    z, w, _ = _linear(model, np.asarray(X, dtype=float), names)
    return _top(z, w, names, k)


def _top(
    z: np.ndarray, w: np.ndarray, names: Sequence[str], k: int
) -> list[list[tuple[str, float]]]:
    with np.errstate(invalid="ignore", over="ignore"):
        contrib = z * w
    # A reason must be a finite number (JSON has no NaN); NaN explains nothing, so it is 0.
    np.nan_to_num(contrib, copy=False, nan=0.0, posinf=np.finfo(float).max, neginf=0.0)
    top = np.argsort(-contrib, axis=1)[:, :k]
    # as Python lists once: indexing a numpy array per element costs ~0.1 us each
    vals = np.take_along_axis(contrib, top, axis=1).tolist()
    return [
        [(names[j], c) for j, c in zip(row, vs, strict=True) if c > 0]
        for row, vs in zip(top.tolist(), vals, strict=True)
    ]


def dump_snapshot(model: compose.Pipeline, meta: dict[str, Any]) -> bytes:
    """Serialize a model with its metadata and the River version it was built with."""
    return pickle.dumps({"river": river.__version__, "meta": meta, "model": model})


def load_snapshot(blob: bytes) -> tuple[compose.Pipeline, dict[str, Any]]:
    """Load a snapshot; refuse one written by another River version (pickles do not port)."""
    try:
        data = unpickle.loads(blob)
    except Exception as exc:
        raise ModelError(f"online-model snapshot is unreadable: {exc}") from exc
    if data.get("river") != river.__version__:
        raise ModelError(
            f"online-model snapshot was written with river {data.get('river')}, this process "
            f"runs river {river.__version__}; retrain or reset the online model"
        )
    return data["model"], data["meta"]
