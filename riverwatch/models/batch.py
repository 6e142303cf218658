"""The batch fraud model: scikit-learn's HistGradientBoostingClassifier on a labeled window.

Chosen by measurement (simulator at the Handbook's scale, 5,000 customers / 10,000
terminals, 21 training days, 7-day hold-out, 4 hold-out weeks x 2 seeds, 18 features):

=============================  =====  =====  ======  =====
HistGradientBoosting           AUC    AP     CP@100  fit s
=============================  =====  =====  ======  =====
defaults (unweighted)          0.903  0.708  0.407    5
class_weight="balanced"        0.913  0.755  0.428    7
positive weight 10 (chosen)    0.912  0.760  0.425    7
positive weight 25 (seed 1)    0.912  0.752  0.407   --
=============================  =====  =====  ======  =====

Unweighted, early stopping halts after ~35 trees on a loss dominated by the 99% legitimate
rows; up-weighting the frauds lets it keep learning the rare class (+0.05 AP). Any weight
from 10 to "balanced" gives the same ranking within noise; 10 distorts the probabilities
least, and :func:`predict_batch` undoes that distortion exactly (the weights scale the odds
by 10), so the batch score is a fraud probability that can be blended with the online one.
For reference on the same windows: random forest (100 trees, depth 20) AP 0.774 on seed 0
but 50 s to fit; logistic regression AP 0.716.

>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(2000, 2))
>>> y = (X[:, 0] > 1.8).astype(int)
>>> m = train_batch(X, y, ("a", "b"), max_iter=50)
>>> p = predict_batch(m, np.array([[3.0, 0.0], [-1.0, 0.0]]))
>>> bool(p[0] > 0.5 > p[1])
True
>>> swapped = predict_batch(m, np.array([[0.0, 3.0]]), names=("b", "a"))
>>> bool(swapped[0] == p[0])
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController

from riverwatch.models import hgb_binning, small_batches
from riverwatch.models.calibration import Calibration

POS_WEIGHT = 10.0


@cache
def _threads() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (slow); limit() is cheap


def one_thread() -> Any:
    """A context in which the trees use one OpenMP thread (the calling thread's setting).

    Measured on this 2-core machine while other work ran: a 1000-row predict took 0.8-1.7 s
    with OpenMP's default 2 threads and 2-4 ms with one; a 150k-row fit 75 s vs 7-10 s. A
    worker already is one process per core, so the trees get no gain from more threads.
    """
    return _threads().limit(limits=1, user_api="openmp")


@dataclass(frozen=True)
class Bagged:
    """Several fitted trees ensembles served as one: the mean of their log-odds.

    Early stopping holds out a random tenth of the rows, so each member sees other rows and
    stops elsewhere; averaging them lowers the variance that split adds. Quality benchmark,
    handbook world, five members against one: AP +0.003 to +0.010 on tuning seeds 101-103 and
    +0.003 to +0.011 on fresh seeds 401-408, AUC -0.004 to +0.006 (README, issue 17). Scoring
    costs ``len(members)`` times one model's (2.35 us a row each at batches of 500; a batch of
    7 rows 36 us each, ``models.small_batches``), which is why ``RIVERWATCH_TRAIN_MEMBERS`` is
    1 by default.
    """

    members: tuple[HistGradientBoostingClassifier, ...]

    @property
    def n_iter_(self) -> int:
        """Trees built, over every member."""
        return sum(int(m.n_iter_) for m in self.members)

    def get_params(self) -> dict[str, Any]:
        """The first member's parameters (the others differ in ``random_state`` only)."""
        return {**self.members[0].get_params(), "members": len(self.members)}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``[[P(0), P(1)], ...]``: the members' mean log-odds, back to probabilities."""
        q = _sigmoid(log_odds(self, np.asarray(X, dtype=float)))
        return np.column_stack([1.0 - q, q])


def log_odds(est: HistGradientBoostingClassifier | Bagged, X: np.ndarray) -> np.ndarray:
    """The raw log-odds of fraud (class weights not undone) of a fitted estimator, or the mean
    of its members', for the rows of ``X``; small batches through treelite
    (``models.small_batches``)."""
    members = est.members if isinstance(est, Bagged) else (est,)
    z = [small_batches.log_odds(m, X, _sklearn(m)) for m in members]
    return z[0] if len(z) == 1 else np.mean(z, axis=0)  # type: ignore[no-any-return]


def _sklearn(est: HistGradientBoostingClassifier) -> Any:
    def exact(X: np.ndarray) -> np.ndarray:
        with one_thread():
            return np.asarray(est.decision_function(X), dtype=float).reshape(len(X))

    return exact


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))  # type: ignore[no-any-return]


@dataclass
class BatchClassifier:
    """A fitted estimator, the feature names of its columns and the weight given to frauds.

    Quacks like a scikit-learn classifier (``predict_proba``, ``classes_``), with the class
    weighting already undone, so a caller holding it as "the estimator" gets probabilities.
    """

    estimator: HistGradientBoostingClassifier | Bagged
    features: tuple[str, ...]
    pos_weight: float = POS_WEIGHT
    # The end (epoch) of the newest data it was fitted on: a later hold-out judges it only on
    # rows from then on (models.training). None: unknown (a model pickled before this field).
    trained_until: float | None = None
    # A refit model's self as judged: fitted on the training window only, before the hold-out
    # (models.training). A later retrain judges the champion by it, so both sides of the
    # comparison are fitted before the same hold-out. None: served as judged, or older pickle.
    judged: BatchClassifier | None = None
    # Maps of its score and of the combined score to fraud probabilities, fitted on its
    # hold-out (models.calibration); the scorers apply them (models.scoring), predict_proba
    # does not. None: not calibrated (a model pickled before this field, or too few frauds).
    calibration: Calibration | None = None
    classes_ = np.array([0, 1])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``[[P(legit), P(fraud)], ...]`` for rows whose columns are :attr:`features`."""
        p = predict_batch(self, X)
        return np.column_stack([1.0 - p, p])

    def describe(self) -> dict[str, Any]:
        """What was trained: estimator class, trees built, the non-default parameters and the
        calibration (None when it has none)."""
        est = self.estimator
        cal = getattr(self, "calibration", None)  # an older pickle's instance lacks the field
        return {
            "estimator": type(est).__name__,
            "n_iter": int(getattr(est, "n_iter_", 0)),
            "pos_weight": self.pos_weight,
            "params": {k: v for k, v in est.get_params().items() if k in _TUNED},
            "calibration": None if cal is None else cal.describe(),
        }


_TUNED = (
    "learning_rate",
    "max_iter",
    "max_leaf_nodes",
    "min_samples_leaf",
    "early_stopping",
    "members",
)


def make_estimator(pos_weight: float = POS_WEIGHT, **params: Any) -> HistGradientBoostingClassifier:
    """An unfitted HistGradientBoostingClassifier with riverwatch's defaults.

    ``random_state`` is fixed (early stopping draws a random validation split), so the same
    data always gives the same model: a retrain on unchanged data cannot "win" by luck.
    """
    options: dict[str, Any] = {"random_state": 0, "class_weight": {0: 1.0, 1: pos_weight}}
    options.update(params)
    return HistGradientBoostingClassifier(**options)


def train_batch(
    X: np.ndarray,
    y: np.ndarray,
    features: Sequence[str],
    pos_weight: float = POS_WEIGHT,
    sample_weight: np.ndarray | None = None,
    trained_until: float | None = None,
    members: int = 1,
    **params: Any,
) -> BatchClassifier:
    """Fit the batch model on ``X`` (columns named by ``features``) and labels ``y`` (0/1),
    each row weighted by ``sample_weight`` (times ``pos_weight`` for a fraud) when given.

    ``members`` > 1 fits that many, each early-stopped on its own random validation split
    (``random_state`` 0, 1, ...), and serves their average (:class:`Bagged`); one when early
    stopping is off (fewer than 10,000 rows by default), where the members would be equal.

    Raises ValueError when ``y`` holds a single class or ``X`` does not match ``features``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    if X.ndim != 2 or X.shape[1] != len(features):
        raise ValueError(f"X has shape {X.shape}, expected (n, {len(features)}) for the features")
    if len(np.unique(y)) < 2:
        raise ValueError("the training labels hold a single class: need frauds and non-frauds")
    seed = params.pop("random_state", 0)
    ests = [make_estimator(pos_weight, random_state=seed + i, **params) for i in range(members)]
    if not _early_stops(ests[0], len(y)):
        ests = ests[:1]  # without early stopping random_state changes nothing: k equal trees
    hgb_binning.install()  # the same bin edges, one sort per feature (models/hgb_binning.py)
    with one_thread():
        for est in ests:
            est.fit(X, y, sample_weight=sample_weight)
    model = ests[0] if len(ests) == 1 else Bagged(tuple(ests))
    return BatchClassifier(model, tuple(features), pos_weight, trained_until)


def _early_stops(est: HistGradientBoostingClassifier, n: int) -> bool:
    """Whether ``est`` early-stops on a random validation split (scikit-learn's rule for
    ``early_stopping="auto"``: on above 10,000 training rows; without a validation fraction it
    stops on the training loss, which no ``random_state`` changes)."""
    on = est.early_stopping is True or (est.early_stopping == "auto" and n > 10_000)
    return on and est.validation_fraction is not None


def predict_batch(
    model: BatchClassifier, X: np.ndarray, names: Sequence[str] | None = None
) -> np.ndarray:
    """Fraud probabilities for the rows of ``X``.

    ``X``'s columns are ``model.features`` unless ``names`` says otherwise; then they are
    matched by name, and a feature the model knows but ``X`` lacks is treated as missing (NaN,
    which the trees route natively). So a model keeps scoring after features are added.
    """
    X = np.asarray(X, dtype=float)
    if len(X) == 0:
        return np.empty(0)
    if names is not None and tuple(names) != model.features:
        where = {n: i for i, n in enumerate(names)}
        cols = [X[:, where[f]] if f in where else np.full(len(X), np.nan) for f in model.features]
        X = np.column_stack(cols)
    # Class weights multiply the odds of fraud by pos_weight; divide them back out.
    return _sigmoid(log_odds(model.estimator, X) - np.log(model.pos_weight))
