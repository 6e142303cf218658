"""The batch model's log-odds for a few rows, without scikit-learn's fixed cost per call.

``HistGradientBoostingClassifier.decision_function`` costs about 360 us a call whatever the
rows (56 trees: about 100 us of input checks, then one Cython call per tree), so where the
scorer's batches are a few rows (2,000 tx/s: 3-7) a champion cost about 50 us a transaction
(README, issue 15, session 38). Treelite's GTIL walks the same trees in one C++ call: 14 us
for one row and 36 for 7 against 419 and 399 (thread CPU, best of 5, 56 trees, 18 features;
README, issue 15, session 39), but about 3.7 us a row against 1.7, so from :data:`SMALL` rows
on (where the two cross for 20 to 150 trees) scikit-learn serves. Treelite, not a hand-written
walk of the trees: it imports scikit-learn's models and keeps up with their layout, which is
private to scikit-learn.

A model is imported once (about 2 ms), and its first small batch, with a few rows of missing,
zero and extreme values, is scored both ways: if the
log-odds differ by more than :data:`TOLERANCE` (a scikit-learn whose trees treelite reads
wrongly), or treelite cannot import the model, scikit-learn serves it from then on, and the
reason is logged once.
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SMALL = 100  # rows: below this GTIL serves (see the module docstring)
TOLERANCE = 1e-9  # log-odds; the two agree to about 1e-15 where treelite reads the trees right

# Per fitted estimator: its treelite call, or None when scikit-learn serves it. Weak keys:
# a retired champion's entry goes with it.
_imported: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def log_odds(est: Any, X: np.ndarray, exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``est``'s raw log-odds for the rows of ``X``: through treelite below :data:`SMALL`
    rows, else (or when treelite cannot serve ``est``) ``exact(X)``, scikit-learn's."""
    if len(X) >= SMALL:
        return exact(X)
    if est not in _imported:
        return _first(est, X, exact)
    model = _imported[est]
    return exact(X) if model is None else model(X)


def _gtil(model: Any, X: np.ndarray) -> np.ndarray:
    """Treelite's public ``gtil.predict``: its checks and output shape, for the first batch."""
    import treelite.gtil  # 0.2 s to import: only where a champion serves

    out = treelite.gtil.predict(model, np.ascontiguousarray(X), nthread=1, pred_margin=True)
    if out.shape != (len(X), 1, 1):
        raise ValueError(f"treelite gives {out.shape} for {len(X)} rows of a binary model")
    return np.asarray(out, dtype=float).reshape(len(X))


class _Direct:
    """One call into treelite's C API per batch (``TreeliteGTILPredict``, its public C API)
    for a model whose output :func:`_gtil` checked to be one float64 a row.

    Why not ``gtil.predict`` every batch: its wrapper builds a config from JSON on each call
    and its ``ctypes.cast`` pointers leave 6 objects in reference cycles a call; the scorer
    frees every other object it allocates by reference counting, so that garbage alone set
    off the collector (4-5 young collections a minute at 2,000 tx/s, 20-40 ms each)."""

    def __init__(self, model: Any) -> None:
        from treelite.gtil.gtil import GTILConfig

        if (model.input_type, model.output_type) != ("float64", "float64"):
            raise ValueError(f"treelite model of {model.input_type} -> {model.output_type}")
        self.model = model
        self.config = GTILConfig(nthread=1, predict_type="raw")  # freed with this object

    def __call__(self, X: np.ndarray) -> np.ndarray:
        # _LIB is treelite's loaded library under a private name of its Python package; the
        # function called is its public C API (c_api.h), as gtil.predict calls it.
        from treelite.core import _LIB, _check_call

        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty(len(X))
        _check_call(
            _LIB.TreeliteGTILPredict(
                self.model.handle,
                ctypes.c_void_p(X.__array_interface__["data"][0]),
                b"float64",
                ctypes.c_uint64(len(X)),
                ctypes.c_void_p(out.__array_interface__["data"][0]),
                self.config.handle,
            )
        )
        return out


def _first(est: Any, X: np.ndarray, exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Import ``est`` into treelite and check it on ``X`` against ``exact``: the latter's
    log-odds either way."""
    probe = np.vstack([X, _probes(X.shape[1])])
    want = exact(probe)
    model = None
    try:
        import treelite.sklearn

        imported = treelite.sklearn.import_model(est)
        checked = _gtil(imported, probe)
        model = _Direct(imported)
        got = model(probe)
        worst = float(np.max(np.abs(np.r_[got - want, checked - want]), initial=0.0))
        if not worst <= TOLERANCE:
            log.warning("treelite's log-odds differ by %.3g from scikit-learn's: not used", worst)
            model = None
    except Exception as exc:  # any failure means: scikit-learn serves it
        log.warning("treelite cannot serve %s (%s): scikit-learn does", type(est).__name__, exc)
        model = None
    _imported[est] = model
    return want[: len(X)]


def _probes(d: int) -> np.ndarray:
    """Rows that reach the paths a batch of real rows may miss: missing values (the trees'
    learned side for NaN), zeros, large and negative values."""
    return np.array([[np.nan] * d, [0.0] * d, [1e12] * d, [-1e12] * d, [1.0] * d])
