"""Direct multi-step regression: one small online linear model per scored horizon step.

The "direct" strategy (Taieb and Hyndman, 2014; Ben Taieb et al., 2012, on the M3 series):
instead of iterating a one-step model h times, which extrapolates whatever it learned at the
next step (a trend past a break, a momentary deviation carried forward), the change h steps
ahead is regressed on what is known at the origin. Per scored step h (the grid of
models.forecast.select; linearly interpolated between them) the target is
``(y[t+h] - y[t]) / scale[t]`` and the features, all relative to y[t] and over the same scale
(an exponentially weighted mean |one-step change|, so the coefficients have no unit):

- ``1``: the drift over h steps;
- ``y[t] - mean[t]``: the deviation from a long exponentially weighted mean, so the model
  mean-reverts by as much as the data shows at that distance, and not at all where it shows none;
- ``y[t] - y[t-1]``: the last change (momentum or its reversal);
- ``y[t] - y[t-L]``: the change over the last season (L = the period, 4 without one);
- with a season, ``y[t+h-m*ceil(h/m)] - y[t]``: the seasonal naive forecast's change.

Each step's model is a ridge regression on exponentially forgotten sufficient statistics
(``sum forget**k x x'``, ``sum forget**k x z``), shrunk toward the yardstick (the seasonal
naive forecast with a season, else the last value: coefficient 1 on the seasonal change and 0
elsewhere), so a new series forecasts like the yardstick and departs from it only as far as
its errors at that step tell. The features of the last ``max step`` origins are kept in a
ring until their target arrives: state O(steps x features**2 + max step + period), work
O(steps x features**2) per point.

>>> d = Direct(seasonality=0, steps=(1, 2, 4))
>>> for t in range(5):
...     d.learn_one(2.0 * t)
>>> d.forecast(3)                # untrained: the yardstick (here the last value)
[8.0, 8.0, 8.0]
>>> for t in range(5, 200):
...     d.learn_one(2.0 * t)
>>> [round(v, 1) for v in d.forecast(5)]   # the drift, learned per step (step 3 between 2 and 4)
[400.0, 402.0, 404.0, 406.0, 406.0]
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from river import time_series

__all__ = ["Direct"]

_COMMON = 4  # features shared by every step: 1, deviation from the mean, last change, season's
_Y, _SCALE = 0, 1  # the row's first columns: y[t] and the scale at the origin


class Direct(time_series.base.Forecaster):
    """Per step of ``steps`` a forgetting ridge regression of the scaled h-step change (see
    the module docstring). ``forget``: per point; ``ridge``: prior strength, in points per
    step ahead; ``mean_alpha``: of the long mean; ``scale_alpha``: of the |one-step change|
    scale; ``clip``: targets are clipped to +-(3 + clip * h) scales, ``feature_clip``: features
    to +-that many. Defaults chosen on the benchmark's tuning series (bench.forecast_panel)."""

    def __init__(
        self,
        seasonality: int = 0,
        steps: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 27, 41, 60),
        forget: float = 0.995,
        ridge: float = 3.0,
        mean_alpha: float = 0.05,
        scale_alpha: float = 0.05,
        clip: float = 1.0,
        feature_clip: float = 10.0,
    ):
        self.seasonality = seasonality
        self.steps = steps
        self.forget = forget
        self.ridge = ridge
        self.mean_alpha = mean_alpha
        self.scale_alpha = scale_alpha
        self.clip = clip
        self.feature_clip = feature_clip
        m = seasonality if seasonality >= 2 else 0
        self._m = m
        self._lag = m or 4
        k = _COMMON + (1 if m else 0)
        g = len(steps)
        self._grid = np.asarray(steps)
        self._prior = np.zeros(k)
        if m:
            self._prior[-1] = 1.0  # the seasonal naive forecast
        self._xx = np.zeros((g, k, k))
        self._xz = np.zeros((g, k))
        # Per origin t (ring of the last max(steps)): y[t], scale[t], the common features and
        # each scored step's seasonal change; NaN while the history is too short.
        self._rows = np.full((int(self._grid.max()), 2 + _COMMON + (g if m else 0)), np.nan)
        self._last: deque[float] = deque(maxlen=self._lag + 1)
        self._mean = math.nan
        self._scale = math.nan
        self._n = 0

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Train each step's model on the origin ``step`` points back, then record y's row."""
        n, grid, rows = self._n, self._grid, self._rows
        origin = rows[(n - grid) % len(rows)]  # per step: the row of origin n - step
        ok = (n >= grid) & ~np.isnan(origin[:, _SCALE])
        if ok.any():
            feats = self._features(origin[ok], np.flatnonzero(ok))
            reach = 3 + self.clip * grid[ok]  # an outage or a break must not dominate the squares
            z = np.clip((y - origin[ok, _Y]) / origin[ok, _SCALE], -reach, reach)
            lam = self.forget
            self._xx[ok] = lam * self._xx[ok] + feats[:, :, None] * feats[:, None, :]
            self._xz[ok] = lam * self._xz[ok] + feats * z[:, None]
        if self._last:
            self._scale = _ew(self._scale, abs(y - self._last[-1]), self.scale_alpha)
        self._mean = _ew(self._mean, y, self.mean_alpha)
        self._last.append(y)
        rows[n % len(rows)] = self._row(y)
        self._n = n + 1

    def _row(self, y: float) -> np.ndarray:
        """The features at the origin just learned (NaN before a season and a lag of it)."""
        row = np.full(self._rows.shape[1], np.nan)
        last, m = self._last, self._m
        if len(last) <= self._lag or math.isnan(self._scale):
            return row
        scale = max(self._scale, 1e-9 * (abs(y) + 1.0))
        row[:2] = y, scale
        common = (1.0, (y - self._mean) / scale, (y - last[-2]) / scale,
                  (y - last[-1 - self._lag]) / scale)  # fmt: skip
        row[2 : 2 + _COMMON] = common
        if m:
            row[2 + _COMMON :] = (self._seasonal(self._grid) - y) / scale
        return row

    def _seasonal(self, h: np.ndarray) -> np.ndarray:
        """The seasonal naive forecast h steps after the last value learned."""
        m, last = self._m, self._last
        back = m * np.ceil(h / m).astype(int) - h  # values before the last one
        return np.array([last[-1 - b] for b in back])

    def _features(self, rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Each row's features for the step at column ``idx`` of the grid."""
        feats = rows[:, 2 : 2 + _COMMON]
        if self._m:
            feats = np.column_stack([feats, rows[np.arange(len(idx)), 2 + _COMMON + idx]])
        return np.clip(feats, -self.feature_clip, self.feature_clip)

    def coefficients(self) -> np.ndarray:
        """Per scored step the ridge solution, shrunk toward the yardstick's coefficients."""
        k = len(self._prior)
        # h-step targets of consecutive origins overlap: about 1/h as many independent ones
        ridge = self.ridge * self._grid[:, None]
        a = self._xx + ridge[:, :, None] * np.eye(k)
        b = self._xz + ridge * self._prior
        return np.linalg.solve(a, b[:, :, None])[:, :, 0]

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """y[t] plus, per step, its scored step's model applied to the features at t."""
        row = self._rows[(self._n - 1) % len(self._rows)]
        if not self._n or math.isnan(row[_SCALE]):
            return [math.nan] * horizon
        h = np.arange(1, horizon + 1)
        # A step between two scored ones: their models' forecasts, linearly interpolated.
        grid = self._grid
        hi = np.minimum(np.searchsorted(grid, h), len(grid) - 1)
        lo = np.maximum(np.searchsorted(grid, h, side="right") - 1, 0)
        span = np.maximum(grid[hi] - grid[lo], 1)
        w = np.clip((h - grid[lo]) / span, 0.0, 1.0)[:, None]
        coef = self.coefficients()
        theta = (1 - w) * coef[lo] + w * coef[hi]
        feats = np.tile(row[2 : 2 + _COMMON], (horizon, 1))
        if self._m:
            seasonal = (self._seasonal(h) - row[_Y]) / row[_SCALE]
            feats = np.column_stack([feats, seasonal])
        feats = np.clip(feats, -self.feature_clip, self.feature_clip)
        change = np.einsum("ij,ij->i", theta, feats)
        return (row[_Y] + row[_SCALE] * change).tolist()


def _ew(average: float, x: float, alpha: float) -> float:
    """An exponentially weighted average updated with ``x`` (NaN: none yet)."""
    return x if math.isnan(average) else (1 - alpha) * average + alpha * x
