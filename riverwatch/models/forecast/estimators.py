"""Small online forecasters River does not ship: seasonal naive, damped Holt-Winters, Theta.

All three follow River's :class:`~river.time_series.base.Forecaster` interface
(``learn_one(y)``, ``forecast(horizon)``) so a :class:`~models.forecast.candidates.Candidate`
wraps them like River's own models, clones them on reset and pickles them in a snapshot.
Each costs O(period) memory and O(1) work per point (O(horizon) per forecast).

>>> naive = SeasonalNaive(seasonality=4)
>>> for y in [1.0, 2.0, 3.0, 4.0, 5.0]:
...     naive.learn_one(y)
>>> naive.forecast(6)                     # the same quarter of the last year
[2.0, 3.0, 4.0, 5.0, 2.0, 3.0]
>>> damped = DampedHoltWinters(alpha=0.5, beta=0.5, gamma=0.1, phi=0.5, seasonality=0)
>>> for y in [10.0, 12.0, 14.0, 16.0, 18.0]:
...     damped.learn_one(y)
>>> [round(v, 2) for v in damped.forecast(4)]   # the trend fades: 1, 1/2, 1/4, ... of it
[17.95, 18.51, 18.79, 18.92]
>>> theta = Theta(alpha=0.5, seasonality=0)
>>> for y in [10.0, 12.0, 14.0, 16.0, 18.0]:
...     theta.learn_one(y)
>>> [round(v, 2) for v in theta.forecast(3)]   # SES level plus half the fitted slope per step
[18.06, 19.06, 20.06]
"""

from __future__ import annotations

import math
from collections import deque

from river import stats, time_series

__all__ = ["DampedHoltWinters", "Mean", "SeasonalNaive", "Theta"]


class SeasonalNaive(time_series.base.Forecaster):
    """The value one season earlier (the last value when ``seasonality`` <= 1).

    The yardstick every seasonal forecast is measured against (MASE), and the candidate that
    serves the far steps of a series whose trend models extrapolate past a break. River has
    no such model; it is a ring buffer of the last season, so it is written here.
    """

    def __init__(self, seasonality: int = 1):
        self.seasonality = seasonality
        self._last: deque[float] = deque(maxlen=max(seasonality, 1))

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Remember ``y`` as the latest value of its season."""
        self._last.append(y)

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """The value of the same season for each of the next ``horizon`` steps."""
        if not self._last:
            return [math.nan] * horizon
        m = len(self._last)
        return [self._last[h % m] for h in range(horizon)]


class Mean(time_series.base.Forecaster):
    """The average method (Hyndman and Athanasopoulos, FPP 5.2) online: an exponentially
    weighted mean of the values, the same for every step ahead.

    What a mean-reverting series returns to: far ahead it beats the last value, which
    carries its current deviation over. River's ``stats.EWMean`` does the averaging.
    """

    def __init__(self, alpha: float = 0.05):
        self.alpha = alpha
        self._mean = stats.EWMean(alpha)

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Average ``y`` in."""
        self._mean.update(y)

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """The mean, for every step."""
        return [self._mean.get()] * horizon


class DampedHoltWinters(time_series.base.Forecaster):
    """Holt-Winters with a damped trend, additive or multiplicative season (ETS(A,Ad,A/M)).

    The error-correction form of Hyndman et al. (2008): with one-step error e,
    ``level += phi * trend + alpha * e / s``, ``trend = phi * trend + beta * e / s``,
    ``season += gamma * e / (level + phi * trend)`` (s = 1 and no division for the additive
    season). The h-step forecast adds ``phi + ... + phi**h`` trends: the trend fades, so a
    slope learned before a break is not extrapolated a year ahead. River's HoltWinters has
    no damping (and seeds additive seasons as ratios), hence this one. It starts after one
    season: level = its mean, trend = 0, season = each value's deviation (or ratio) from it.
    """

    def __init__(
        self,
        alpha: float = 0.2,
        beta: float = 0.05,
        gamma: float = 0.2,
        phi: float = 0.9,
        seasonality: int = 0,
        multiplicative: bool = False,
    ):
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.phi = phi
        self.seasonality = seasonality
        self.multiplicative = multiplicative
        self._first: list[float] = []
        self._level = math.nan
        self._trend = 0.0
        self._season: deque[float] = deque(maxlen=max(seasonality, 1))

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Update level, trend and the season of ``y`` with its one-step error."""
        if math.isnan(self._level):
            self._first.append(y)
            if len(self._first) >= max(self.seasonality, 2):
                self._start()
            return
        mul = self.multiplicative
        s = self._season[0] if self.seasonality > 1 else (1.0 if mul else 0.0)
        base = self._level + self.phi * self._trend
        e = y - (base * s if mul else base + s)
        scaled = e / s if mul else e
        self._level = base + self.alpha * scaled
        self._trend = self.phi * self._trend + self.beta * scaled
        if self.seasonality > 1:
            self._season.append(s + self.gamma * (e / base if mul else e))

    def _start(self) -> None:
        level = sum(self._first) / len(self._first)
        self._level = level
        if self.seasonality > 1:
            m = self.seasonality
            self._season.extend(
                y / level if self.multiplicative else y - level for y in self._first[-m:]
            )
        self._first = []

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """Level plus the damped trend sum, with the season of each step."""
        if math.isnan(self._level):
            return [math.nan] * horizon
        out, damp, phi_h = [], 0.0, 1.0
        m = len(self._season) if self.seasonality > 1 else 0
        for h in range(horizon):
            phi_h *= self.phi
            damp += phi_h
            base = self._level + damp * self._trend
            if not m:
                out.append(base)
            elif self.multiplicative:
                out.append(base * self._season[h % m])
            else:
                out.append(base + self._season[h % m])
        return out


class Theta(time_series.base.Forecaster):
    """The Theta method as simple exponential smoothing with drift (Hyndman and Billah, 2003).

    On the seasonally adjusted series x: the forecast is the SES level plus half the slope
    of x on time per step ahead (the theta=0 line's slope; theta=2 doubles the curvature).
    The level is River's ``stats.EWMean``; the slope is an exponentially weighted regression
    from River's ``stats.EWCov`` and ``stats.EWVar`` of (t, x), so the drift follows a break
    after about ``1 / slope_memory`` points. The season is the multiplicative (ratio) or
    additive index of each position, smoothed like Holt-Winters' against the level before
    the point. Not in River; its pieces are.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        seasonality: int = 0,
        gamma: float = 0.1,
        slope_memory: float = 0.02,
        multiplicative: bool = False,
    ):
        self.alpha = alpha
        self.seasonality = seasonality
        self.gamma = gamma
        self.slope_memory = slope_memory
        self.multiplicative = multiplicative
        self._level = stats.EWMean(alpha)
        self._cov = stats.EWCov(slope_memory)
        self._var = stats.EWVar(slope_memory)
        self._t = 0
        self._season: deque[float] = deque(maxlen=max(seasonality, 1))
        self._first: list[float] = []

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Adjust ``y`` by its season, then update the level, the slope and the season."""
        m = self.seasonality if self.seasonality > 1 else 0
        if m and len(self._season) < m:
            self._first.append(y)
            if len(self._first) == m:  # the first season seeds the indices
                mean = sum(self._first) / m
                idx = [v / mean if self.multiplicative else v - mean for v in self._first]
                self._season.extend(idx)
                for _ in self._first:  # adjusted by the seed indices, each value is the mean
                    self._learn_adjusted(mean)
                self._first = []
            return
        s = self._season[0] if m else (1.0 if self.multiplicative else 0.0)
        adjusted = y / s if self.multiplicative else y - s
        before = self._level.get() if self._t else adjusted
        self._learn_adjusted(adjusted)
        if m:
            new = y / before if self.multiplicative else y - before
            self._season.append(s + self.gamma * (new - s))

    def _learn_adjusted(self, x: float) -> None:
        self._level.update(x)
        self._cov.update(float(self._t), x)
        self._var.update(float(self._t))
        self._t += 1

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list[float]:
        """SES level plus half the slope per step (and the SES bias term), reseasonalised."""
        if not self._t:
            return [math.nan] * horizon
        var = self._var.get()
        slope = self._cov.get() / var if var > 0 else 0.0
        a = self.alpha
        # Hyndman and Billah's drift: b/2 * (h - 1 + 1/a - (1 - a)**n / a)
        lift = 1 / a - (1 - a) ** self._t / a - 1
        level = self._level.get()
        m = len(self._season) if self.seasonality > 1 else 0
        out = []
        for h in range(1, horizon + 1):
            x = level + slope / 2 * (h + lift)
            if not m:
                out.append(x)
            else:
                s = self._season[(h - 1) % m]
                out.append(x * s if self.multiplicative else x + s)
        return out
