"""Which forecast serves each horizon step: rolling h-step errors, selection and combination.

Candidates are scored at a grid of horizon steps (:func:`scored_steps`: every step up to 12,
then about 1.5x apart), not at every step: the forecasts awaiting their score are a ring per
scored step s of the last s origins, so a series holds sum(grid) of them per candidate
instead of horizon**2 (224 instead of 3,600 at the default 60 steps). A step between two
scored ones takes the errors of the scored step below it.

Per step the served forecast is either one candidate or the **combination**: the mean of
the ``k`` candidates with the lowest rolling error at that step, weighted by the inverse of
that error (forecast combination; Bates and Granger, 1969; the M4 competition's simple
combinations). Before ``combine_from`` the combination is scored like a candidate, so it
serves only where its own rolling error is lowest; the naive forecasts' errors are discounted
by the naive margin there, so every other forecast, the combination too, must beat them
clearly to serve. From ``combine_from`` on (:func:`serve`) the combination always serves,
its candidates ranked and weighted by those discounted errors (so the seasonal naive forecast
enters it wherever it is about as good as the best), and only those within ``within`` of the
lowest (a pool, Kourentzes et al., 2019: a clearly better candidate serves alone): a rolling
error at step s averages only about halflife / s independent errors (4 at step 12 with a
50-point half-life), too few to pick one of several close candidates by, and combining beats
picking when the errors do not tell the candidates apart (Claeskens et al., 2016, on the
forecast combination puzzle).

>>> scored_steps(60).tolist()
[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 27, 41, 60]
>>> num = np.array([[1.0, 4.0], [2.0, 0.0]])
>>> den = np.array([[1.0, 1.0], [1.0, 0.0]])   # candidate 1 not scored at step 2 yet
>>> err, at = rolling_errors(num, den, np.array([True, True]))
>>> err.tolist(), at.tolist()                 # step 2 compares at step 1
([[1.0, 1.0], [2.0, 2.0]], [0, 0])
>>> err = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0]])
>>> fc = np.array([[10.0, 10.0], [20.0, 20.0], [40.0, 40.0]])
>>> combine(fc, err, 2).tolist()     # step 1: 10 and 20 weighted 1 : 1/2; step 2: 40 and 20
[13.333333333333334, 33.333333333333336]
>>> now = np.vstack([fc, [[np.nan, np.nan]]])     # rows: 3 candidates, then the combination
>>> e = np.vstack([err, [[4.5, 4.5]]])           # the combination's own rolling errors
>>> serve(now, e, np.ones(4), np.ones(4, bool), k=2, combine_from=2).tolist()  # 2nd step: far
[0, 3]
>>> now[3].tolist()                 # step 1: 10 and 20 as above; step 2: 40 alone (2 > 1.1 x 1)
[13.333333333333334, 40.0]
"""

from __future__ import annotations

import math

import numpy as np

from riverwatch.models.forecast.robust import trimmed


def scored_steps(horizon: int) -> np.ndarray:
    """The horizon steps at which forecasts are scored (1-based): all up to 12, then about
    1.5x apart, and the horizon itself."""
    steps = list(range(1, min(horizon, 12) + 1))
    while steps[-1] < horizon:
        steps.append(min(horizon, math.ceil(steps[-1] * 1.5)))
    return np.array(steps)


def step_columns(grid: np.ndarray, horizon: int) -> np.ndarray:
    """For each step 1..horizon, the column of the scored step at or below it."""
    return np.searchsorted(grid, np.arange(1, horizon + 1), side="right") - 1


def rolling_errors(
    err_num: np.ndarray, err_den: np.ndarray, ready: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling errors (rows x scored steps) to compare, inf where a row cannot serve; and per
    scored step the column they were taken from.

    Errors at step s exist only s points after a row's first forecast, so a newly ready
    candidate would be ignored at long steps for a while, leaving a worse incumbent in place.
    Each step therefore compares rows at the longest scored step g <= s at which every ready
    row has been scored (its own step while none is comparable).
    """
    g = err_num.shape[1]
    scored = err_den > 0
    err = np.where(scored, err_num / np.where(scored, err_den, 1), np.inf)
    err[~ready] = np.inf
    common = scored[ready].all(axis=0) if ready.any() else np.zeros(g, dtype=bool)
    last = np.maximum.accumulate(np.where(common, np.arange(g), -1))
    at = np.where(last >= 0, last, np.arange(g))
    return err[:, at], at


def serving(err: np.ndarray, ready: np.ndarray) -> np.ndarray:
    """Per step the row with the lowest error (``err``: rows x steps); where no row has been
    scored, the first ready row in priority order."""
    best = np.argmin(err, axis=0)
    unscored = np.isinf(err[best, np.arange(err.shape[1])])
    if unscored.any():
        best[unscored] = int(np.argmax(ready)) if ready.any() else 0
    return best


def combine(forecasts: np.ndarray, err: np.ndarray, k: int) -> np.ndarray:
    """Per step the inverse-error weighted mean of the ``k`` rows with the lowest finite
    error (``forecasts``, ``err``: rows x steps); NaN where no row has one."""
    order = np.argsort(err, axis=0)[:k]
    e = np.take_along_axis(err, order, axis=0)
    f = np.take_along_axis(forecasts, order, axis=0)
    ok = np.isfinite(e) & np.isfinite(f)
    w = np.where(ok, 1.0 / np.maximum(np.where(ok, e, 1.0), 1e-12), 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (w * np.where(ok, f, 0.0)).sum(axis=0) / total
    return np.where(total > 0, out, np.nan)


def serve(
    now: np.ndarray,
    err: np.ndarray,
    handicap: np.ndarray,
    ready: np.ndarray,
    k: int,
    combine_from: int,
    within: float = 0.1,
    trim: int = 0,
) -> np.ndarray:
    """Fill the combination (``now``'s last row, rows x steps: the candidates' forecasts,
    then the combination) and return per step the row serving it.

    ``err``: the rows' rolling errors per step (inf: cannot serve); ``handicap``: per row,
    the factor its error counts with (below 1 for the naive forecasts); ``ready``: rows that
    forecast. Before step ``combine_from`` (1-based) the combination ranks and weights the
    candidates by their errors as measured and the row with the lowest handicapped error
    serves; from it on the combination ranks and weights them by the handicapped errors and
    serves, of the candidates whose handicapped error is at most ``1 + within`` times the
    lowest (a step where no candidate has been scored yet is still selected). ``trim`` > 0:
    from ``combine_from`` on the combination is instead the trimmed mean of the ``trim``
    candidates with the lowest handicapped error (models.forecast.robust), no pool.
    """
    c = now.shape[0] - 1
    far = np.arange(1, now.shape[1] + 1) >= combine_from
    weighed = err * handicap[:, None]
    rank = np.where(far, weighed, err)[:c]
    with np.errstate(invalid="ignore"):  # inf * (1 + within) where no candidate is scored
        pool = rank <= np.min(rank, axis=0) * (1 + within)
    now[c] = combine(now[:c], np.where(far & ~pool, np.inf, rank), k)
    if trim > 0:
        now[c] = np.where(far, trimmed(now[:c], rank, trim), now[c])
    best = serving(weighed, ready)
    best[far & ~np.isnan(now[c])] = c
    return best
