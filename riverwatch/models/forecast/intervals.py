"""Online conformal intervals per horizon step, and the coverage they really achieve.

For each horizon step h the last ``window`` residuals (observed - served forecast, h steps
ahead) are kept; the interval around a new forecast is the forecast plus the empirical
alpha/2 and 1 - alpha/2 quantiles of those residuals, with the finite-sample correction of
split conformal prediction (the k-th smallest of n residuals, k = ceil((n + 1)(1 - alpha/2))).
Signed residuals keep a biased model's interval honest: it shifts instead of widening.
Optionally the quantile level adapts to the misses seen (adaptive conformal inference),
carrying the misses it could not yet make up for:

>>> import numpy as np
>>> c = Conformal(horizon=2, window=100, coverage=0.8)
>>> c.min_count
9
>>> for r in np.linspace(-10, 10, 21):
...     c.add(np.array([r, 2 * r]))
>>> lo, hi = c.offsets()
>>> lo.tolist(), hi.tolist()
([-9.0, -18.0], [9.0, 18.0])
>>> c.record(np.array([True, True]), np.array([True, False]))
>>> c.realised()
[1.0, None]
>>> a = Conformal(horizon=1, window=100, coverage=0.9, rate=0.05)
>>> for r in np.linspace(-10, 10, 21):
...     a.add(np.array([r]))
>>> for _ in range(4):                         # misses even with the widest interval
...     a.record(np.array([False]), np.array([True]))
>>> round(float(a.alpha[0]), 3), a.offsets()[1].tolist()   # alpha < 0: the window's extreme
(-0.08, [10.0])
>>> for _ in range(15):
...     a.record(np.array([True]), np.array([True]))
>>> round(float(a.alpha[0]), 3)                # 15 hits later the debt is not yet made up
-0.005
"""

from __future__ import annotations

import math

import numpy as np


class Conformal:
    """Residual windows per horizon step (a ring buffer), quantile offsets and coverage."""

    def __init__(self, horizon: int, window: int, coverage: float, rate: float = 0.0):
        if not 0 < coverage < 1:
            raise ValueError("coverage must be within (0, 1)")
        # float32: a score is a residual over its error scale; 7 digits are plenty, and the
        # window is most of a snapshot.
        self.coverage = coverage
        self.rate = rate
        self.alpha = np.full(horizon, 1 - coverage)  # adapted miscoverage target per step
        self.min_count = math.ceil(2 / (1 - coverage) - 1 - 1e-9)  # n with (n+1)(1-a/2) <= n
        self.res = np.full((window, horizon), np.nan, dtype=np.float32)
        self.row = 0
        self.hits = np.zeros(horizon, dtype=np.int64)
        self.total = np.zeros(horizon, dtype=np.int64)

    def add(self, residuals: np.ndarray) -> None:
        """Append one observation's residuals, one per horizon step (NaN: no forecast)."""
        self.res[self.row % len(self.res)] = residuals
        self.row += 1

    def counts(self) -> np.ndarray:
        """Residuals held per horizon step."""
        return np.count_nonzero(~np.isnan(self.res), axis=0)

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper offsets to add to a forecast, per step, at the adapted alpha.

        NaN where a step holds fewer residuals than the finite-sample quantile needs
        (``min_count``: 19 for 90%); :func:`fill_offsets` fills those steps.
        """
        return _quantiles(self.res, self.alpha, self.min_count)

    def record(self, inside: np.ndarray, valid: np.ndarray) -> None:
        """Count, per step, whether the observed value fell inside the published interval.

        With ``rate`` > 0 this is adaptive conformal inference (Gibbs and Candès, 2021):
        each miss lowers that step's alpha (wider intervals), each hit raises it a little,
        so the realised coverage tracks the target even when the errors drift.
        """
        self.hits += inside & valid
        self.total += valid
        if self.rate:
            target = 1 - self.coverage
            step = self.rate * (target - (~inside).astype(float))
            # ACI's long-run guarantee, |mean miss - target| <= (max(target, 1 - target) +
            # rate) / (rate * T) after T points, rests on every miss being counted. Clipping
            # alpha at 0 forgot the misses of an interval already at the window's extremes
            # (an outage is h misses in a row at step h), so coverage fell short after each
            # such run. Below 0 the interval stays at the extremes (ACI's infinite one is no
            # use to publish) and the debt is carried; the floor of -1 bounds it (1 / rate
            # misses), so after a structural break alpha is back within
            # (1 + target) / (rate * target) hits. The ceiling 2 * target only stops the
            # intervals narrowing further: it can only add coverage.
            self.alpha = np.clip(self.alpha + np.where(valid, step, 0.0), -1.0, 2 * target)

    def realised(self) -> list[float | None]:
        """The fraction of observations inside their interval, per step (None: none yet)."""
        return [float(h / t) if t else None for h, t in zip(self.hits, self.total, strict=True)]


def fill_offsets(lo: np.ndarray, hi: np.ndarray, scale: float, z: float) -> None:
    """Fill steps without enough residuals in place: the nearest shorter calibrated step's
    offsets, widened to at least the normal interval ``± z * scale``.

    The scores are residuals over each step's own error scale (see models.forecast.series), so
    their quantiles change little with the step, but a shorter step's may be narrower or
    shifted (its bias is not this step's): the normal interval is the floor, ``scale`` being
    the standard deviation of a score (about 1.25 for scores over a mean absolute error).
    """
    last = -1
    for i in range(len(lo)):
        if not math.isnan(lo[i]):
            last = i
            continue
        lo[i] = min(lo[last], -z * scale) if last >= 0 else -z * scale
        hi[i] = max(hi[last], z * scale) if last >= 0 else z * scale


def floor_thin(
    lo: np.ndarray,
    hi: np.ndarray,
    held: np.ndarray,
    steps: np.ndarray,
    min_count: int,
    scale: float,
    z: float,
) -> None:
    """Widen, in place, the calibrated steps whose windows hold fewer than ``min_count``
    independent residuals to at least the normal interval ``± z * scale``.

    Errors h steps ahead from consecutive origins overlap in h - 1 of the steps they add up
    (a random walk's are MA(h - 1): Bartlett), so a window of n of them holds about n / h
    independent ones. Their empirical quantiles stand for that many: at step 12, 100
    residuals of one run of misses (a trend the models lag) put both quantiles on one side
    of zero, and the interval left out its own forecast; its calibrated forecasts covered
    0.74-0.80 on the benchmark's trending quarterly series (bench.forecast_panel --wide;
    0.75-0.83 with the warm-up's). Such a step gets the same floor as one without enough
    residuals (:func:`fill_offsets`); a window whose quantiles are wider keeps them.

    >>> lo, hi = np.array([-1.0, 0.3]), np.array([1.0, 2.0])
    >>> floor_thin(lo, hi, np.array([100, 100]), np.array([1, 12]), 19, 1.0, 2.0)
    >>> lo.tolist(), hi.tolist()
    ([-1.0, -2.0], [1.0, 2.0])
    """
    thin = ~np.isnan(lo) & (held < min_count * steps)
    lo[thin] = np.minimum(lo[thin], -z * scale)
    hi[thin] = np.maximum(hi[thin], z * scale)


def one_step_band(residuals: np.ndarray, coverage: float, min_count: int) -> float:
    """The half-width of the nominal interval from a window of one-step residuals (NaN: slots
    not filled), on its wider side; NaN with fewer than ``min_count`` residuals."""
    lo, hi = _quantiles(residuals[:, None], np.array([1 - coverage]), min_count)
    return max(-float(lo[0]), float(hi[0]), 0.0)


def _quantiles(res: np.ndarray, alpha: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column the finite-sample alpha/2 and 1 - alpha/2 quantiles of ``res`` (NaN: empty)."""
    srt = np.sort(res, axis=0)  # NaNs sort last
    n = np.count_nonzero(~np.isnan(srt), axis=0)
    k_hi = np.minimum(np.ceil((n + 1) * (1 - alpha / 2)), n).astype(np.int64)
    k_lo = np.maximum(np.floor((n + 1) * alpha / 2), 1).astype(np.int64)
    cols = np.arange(srt.shape[1])
    lo = srt[np.clip(k_lo - 1, 0, None), cols]
    hi = srt[np.clip(k_hi - 1, 0, None), cols]
    few = n < max(min_count, 1)
    lo[few], hi[few] = np.nan, np.nan
    return lo, hi
