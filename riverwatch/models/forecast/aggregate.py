"""Temporal aggregation: a damped trend fitted on non-overlapping means of ``k`` points.

The far steps of a noisy series are mostly its level and its season; a one-step model
chases the noise of the latest points and carries it k steps ahead. Fitted on the means of
non-overlapping buckets of ``k`` points (a season of them: a year of months, a day of hours)
the level and the trend see little of that noise; the season is estimated on the points, as
in Theta, against the aggregate level. This is the idea of MAPA and temporal hierarchies
(Kourentzes, Petropoulos and Trapero, 2014; Athanasopoulos et al., 2017), one aggregation
level of it; the candidates' combination does the rest. O(period) memory, O(1) work per point.
A candidate of the forecaster only from ``ForecastConfig.aggregate_from`` on (off by
default: on the benchmark's tuning series it changed MAE at +12 by under 1%, see README
"Forecasting benchmark").

>>> agg = TemporalAggregate(k=2, alpha=0.5, beta=0.0, phi=0.5, seasonality=0)
>>> for y in [10.0, 12.0, 14.0, 16.0, 18.0, 20.0]:
...     agg.learn_one(y)
>>> agg._level, agg._trend   # bucket means 11, 15, 19: the trend seeded at 4, then damped
(18.0, 2.0)
>>> [round(v, 2) for v in agg.forecast(3)]   # 0.75, 1.25, 1.75 buckets past the last middle
[18.81, 19.16, 19.41]
>>> agg.learn_one(100.0)     # a half-filled bucket does not move the level
>>> [round(v, 2) for v in agg.forecast(1)]
[19.16]
"""

from __future__ import annotations

import math
from collections import deque

from river import time_series

__all__ = ["TemporalAggregate"]


class TemporalAggregate(time_series.base.Forecaster):
    """Damped Holt on the means of ``k`` seasonally adjusted points, reseasonalised.

    The season (additive; a :class:`~models.forecast.candidates.Candidate` with ``log`` makes
    it multiplicative) is seeded by the first ``seasonality`` points, smoothed with ``gamma``
    against the level at each point and kept summing to zero (``_drift``: the sum of the
    stored indices, taken off their mean lazily). The level is the smoothed mean of the last
    complete bucket, so a step is forecast from the middle of that bucket, the trend (per
    bucket, damped by ``phi`` per bucket) carried over the buckets in between, fractions of
    one too; the level moves only once a bucket is complete. Defaults: the best setting on
    the benchmark's tuning series (which hardly tell settings apart: within 2% of it over
    alpha 0.2-0.5, beta 0.05-0.4, phi 0.7-1, gamma 0.05-0.2); a strongly damped trend (phi
    0.8) did as well there but lags a steady trend by two buckets of it.
    """

    def __init__(
        self,
        k: int = 12,
        alpha: float = 0.3,
        beta: float = 0.05,
        phi: float = 0.98,
        gamma: float = 0.1,
        seasonality: int = 0,
    ):
        self.k = max(k, 1)
        self.alpha = alpha
        self.beta = beta
        self.phi = phi
        self.gamma = gamma
        self.seasonality = seasonality
        self._season: deque[float] = deque(maxlen=max(seasonality, 1))
        self._first: list[float] = []
        self._level = math.nan
        self._trend = 0.0
        self._sum = 0.0
        self._fill = 0
        self._drift = 0.0  # sum of the stored season indices: each counts less their mean
        self._buckets = 0  # complete buckets after the one the level was seeded with

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Adjust ``y`` by its season, add it to the bucket; a full bucket updates the level."""
        m = self.seasonality if self.seasonality > 1 else 0
        if m and len(self._season) < m:
            self._first.append(y)
            if len(self._first) == m:  # the first season seeds the indices and the level
                mean = sum(self._first) / m
                self._season.extend(v - mean for v in self._first)
                self._level, self._first, self._buckets = mean, [], 0
            return
        s = self._season[0] - self._drift / m if m else 0.0
        if m:  # against the level at this point: the last bucket's, its trend carried on
            ref = self._level + self._damp(self._fill) * self._trend
            new = s + self.gamma * (y - ref - s) + self._drift / m
            self._drift += new - self._season[0]
            self._season.append(new)
        self._sum += y - s
        self._fill += 1
        if self._fill == self.k:
            self._learn_bucket(self._sum / self.k)
            self._sum, self._fill = 0.0, 0

    def _learn_bucket(self, mean: float) -> None:
        """Damped Holt's update with a bucket's mean (the first ones seed level and trend)."""
        self._buckets += 1
        if math.isnan(self._level):
            self._level, self._buckets = mean, 0
            return
        if self._buckets == 1:  # the trend per bucket, from the distance of the two middles
            m = self.seasonality if self.seasonality > 1 else 0
            self._trend = (mean - self._level) * self.k / ((m + self.k) / 2 if m else self.k)
            self._level = mean
            return
        base = self._level + self.phi * self._trend
        e = mean - base
        self._level = base + self.alpha * e
        self._trend = self.phi * self._trend + self.beta * e

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """Per step the level plus the damped trend to that step, plus the step's season."""
        if math.isnan(self._level):
            return [math.nan] * horizon
        m = len(self._season) if self.seasonality > 1 else 0
        out = []
        for h in range(horizon):
            v = self._level + self._damp(self._fill + h) * self._trend
            out.append(v + self._season[h % m] - self._drift / m if m else v)
        return out

    def _damp(self, pos: int) -> float:
        """The trend multiplier of the point ``pos`` points into the bucket being filled: it
        lies d = (pos + (k + 1) / 2) / k buckets after the middle of the last complete bucket;
        phi + phi**2 + ... over d buckets (d itself when phi is 1)."""
        d = (pos + (self.k + 1) / 2) / self.k
        phi = self.phi
        return d if phi >= 1 else phi * (1 - phi**d) / (1 - phi)
