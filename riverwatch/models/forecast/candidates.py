"""The candidate forecasters run side by side for every series.

River's models, and the forecasting literature's starting points River lacks
(models.forecast.estimators). Each candidate wraps one forecaster with what it needs around it:
a log transform for multiplicative series (only while every value is positive), calendar
features for the regression, and a readiness rule. A candidate that fails (a value its
model cannot take, a non-finite forecast) is switched off for that series instead of failing
the series.

>>> from riverwatch.models.forecast.calendar import detect
>>> cal = detect([0.0, 3600.0, 7200.0, 10800.0])           # hourly: a 24-point day
>>> [c.name for c in make_candidates(cal)]  # doctest: +NORMALIZE_WHITESPACE
['holt', 'holt_winters', 'holt_winters_mul', 'snarimax', 'seasonal_naive', 'naive', 'damped',
 'theta', 'mean', 'damped_mul', 'theta_mul', 'calendar_regression', 'calendar_regression_diff']
>>> holt = make_candidates(cal)[0]
>>> for i, y in enumerate([10.0, 11.0, 12.0, 13.0]):
...     holt.learn(3600.0 * i, y, cal)
>>> [round(v, 1) for v in holt.forecast(cal.future(10800.0, 2), cal)]
[13.8, 14.8]
"""

from __future__ import annotations

import math
from typing import Any

from river import linear_model, time_series

from riverwatch.models.forecast.aggregate import TemporalAggregate
from riverwatch.models.forecast.calendar import Calendar, fourier
from riverwatch.models.forecast.direct import Direct
from riverwatch.models.forecast.estimators import DampedHoltWinters, Mean, SeasonalNaive, Theta

_MAX_EXP = 700.0
NAIVE = (
    "seasonal_naive",
    "naive",
)  # the yardsticks: other candidates must beat them  # exp() of more overflows a float


DIRECT = "direct"  # run and served from ForecastConfig.direct_from on (0: not run)
AGGREGATE = ("aggregate", "aggregate_log")  # from ForecastConfig.aggregate_from on (0: not run)
AGGREGATE_K = 4  # the bucket of a series without a season


class Candidate:
    """One River forecaster plus its transform and readiness; River's learn/forecast shape.

    ``log``: the model sees log(y) and answers exp(forecast); ``positive``: the model needs
    values > 0 (implied by ``log``): it is switched off at the first value <= 0. ``exog``:
    the model receives the calendar features of each timestamp. ``min_points``: values
    learned before its forecasts are used.
    """

    def __init__(
        self,
        name: str,
        model: Any,
        *,
        log: bool = False,
        positive: bool = False,
        exog: bool = False,
        min_points: int = 2,
    ):
        self.name = name
        self.model = model
        self.log = log
        self.positive = positive or log
        self.exog = exog
        self.min_points = min_points
        self.learned = 0
        self.alive = True
        self.lo = math.inf  # range of the values learned: forecasts far outside it diverged
        self.hi = -math.inf

    @property
    def ready(self) -> bool:
        """True when the candidate can forecast."""
        return self.alive and self.learned >= self.min_points

    def learn(self, ts: float, y: float, cal: Calendar) -> None:
        """Learn the value ``y`` observed at ``ts``."""
        if not self.alive:
            return
        if self.positive and y <= 0:
            self.alive = False
            return
        try:
            x = fourier(cal, ts) if self.exog else None
            self.model.learn_one(math.log(y) if self.log else y, x)
        except (ArithmeticError, ValueError):
            self.alive = False
            return
        self.learned += 1
        self.lo, self.hi = min(self.lo, y), max(self.hi, y)

    def forecast(
        self, future: list[float], cal: Calendar, xs: list[dict[str, float]] | None = None
    ) -> list[float] | None:
        """Forecasts for the timestamps ``future``; None when not ready or not finite.

        ``xs``: the calendar features of ``future`` when the caller already has them.
        """
        if not self.ready:
            return None
        try:
            if self.exog:
                xs = xs if xs is not None else [fourier(cal, ts) for ts in future]
            else:
                xs = None
            raw = self.model.forecast(len(future), xs)
            out = [math.exp(min(v, _MAX_EXP)) for v in raw] if self.log else [float(v) for v in raw]
        except (ArithmeticError, ValueError, TypeError):
            self.reset()
            return None
        span = 10 * (self.hi - self.lo) + abs(self.hi) + 1.0
        if not all(math.isfinite(v) and self.lo - span < v < self.hi + span for v in out):
            self.reset()
            return None
        return out

    def reset(self) -> None:
        """Start the model afresh (River's clone keeps the parameters, drops what was learned).

        Online SGD can diverge on a series with level shifts; a diverged candidate relearns
        from the next point instead of serving nonsense or being lost for good.
        """
        self.model = self.model.clone()
        self.learned = 0


def make_candidates(
    cal: Calendar, steps: tuple[int, ...] | None = None, aggregate: bool = False
) -> list[Candidate]:
    """The candidates for a series with calendar ``cal``, in serving priority order.

    - ``holt``: Holt's linear trend (HoltWinters without season), ready after two points:
      the fallback while the others warm up.
    - ``holt_winters`` / ``holt_winters_mul``: additive and multiplicative HoltWinters with
      the series' period (multiplicative only while values are positive).
    - ``snarimax``: seasonal ARIMA (first and seasonal differences, AR and MA lags up to
      one period, capped at 12) on an exact, slowly forgetting Bayesian linear regression.
    - ``seasonal_naive`` (the value a season before), ``naive`` (the last value; seasonal
      series only), ``damped`` / ``damped_mul`` (damped trend, additive and multiplicative
      season), ``theta`` / ``theta_mul`` (SES with drift on the seasonally adjusted series),
      ``mean`` (an exponentially weighted mean: the average method): see :func:`_classics`.
    - ``direct`` (only given ``steps``: models.forecast.select's grid): per scored step a
      regression of the change that many steps ahead (models.forecast.direct).
    - ``aggregate`` / ``aggregate_log`` (only given ``aggregate``: ForecastConfig.aggregate_from
      > 0): damped trend on the means of a season of points, additive and on log(y)
      (temporal aggregation, models.forecast.aggregate; buckets of 4 points without season).
    - ``calendar_regression``: y on the calendar's trend and Fourier terms, fitted by exact
      online Bayesian linear regression (SNARIMAX with exogenous features). Additive on
      purpose: log(y) would need interactions between the daily and weekly terms.
    - ``calendar_regression_diff``: the point-to-point change of log(y) on the same
      features plus two AR lags: multiplicative, and it follows level changes.
    """
    m = cal.period
    out = _holt_winters(m)
    lags = min(max(m, 1), 12)
    out.append(
        Candidate(
            "snarimax",
            time_series.SNARIMAX(
                p=lags,
                d=1,
                q=lags,
                m=m,
                sd=1 if m >= 2 else 0,
                regressor=linear_model.BayesianLinearRegression(smoothing=0.999),
            ),
            min_points=m + 2,
        )
    )
    out += _classics(m)
    if steps:
        season = m if m >= 2 else 0
        out.append(Candidate(DIRECT, Direct(season, steps), min_points=(season or 4) + 1))
    if aggregate:
        out += _aggregates(m)
    if cal.cycles:
        out += _calendar_regressions()
    return out


def _aggregates(m: int) -> list[Candidate]:
    """Temporal aggregation (models.forecast.aggregate) with buckets of a season, additive
    and on log(y)."""
    season = m if m >= 2 else 0
    k = m if season else AGGREGATE_K
    return [
        Candidate(
            name,
            TemporalAggregate(k, seasonality=season),
            log=name.endswith("_log"),
            min_points=max(season, 1) + k,
        )
        for name in AGGREGATE
    ]


def _holt_winters(m: int) -> list[Candidate]:
    """Holt's linear trend, and with a period ``m`` >= 2 the additive and multiplicative
    HoltWinters (see :func:`make_candidates`)."""
    out = [Candidate("holt", time_series.HoltWinters(alpha=0.3, beta=0.05))]
    if m >= 2:
        out.append(
            Candidate(
                "holt_winters",
                time_series.HoltWinters(alpha=0.3, beta=0.05, gamma=0.3, seasonality=m),
                min_points=m,
            )
        )
        out.append(
            Candidate(
                "holt_winters_mul",
                time_series.HoltWinters(
                    alpha=0.3, beta=0.1, gamma=0.6, seasonality=m, multiplicative=True
                ),
                positive=True,
                min_points=m,
            )
        )
    return out


def _calendar_regressions() -> list[Candidate]:
    """The two calendar regressions of a series with daily or weekly cycles (see
    :func:`make_candidates`)."""
    out = []
    variants = (
        ("calendar_regression", 0, 0, False),
        ("calendar_regression_diff", 2, 1, True),
    )
    for name, p, d, log in variants:
        regressor = linear_model.BayesianLinearRegression(alpha=1e-3)
        out.append(
            Candidate(
                name,
                time_series.SNARIMAX(p=p, d=d, q=0, regressor=regressor),
                log=log,
                exog=True,
                min_points=6,
            )
        )
    return out


def _classics(m: int) -> list[Candidate]:
    """The forecasting literature's starting points (models.forecast.estimators): the seasonal
    naive forecast, damped trend with additive and multiplicative season, and Theta."""
    season = m if m >= 2 else 0
    start = max(m, 2)  # points before their first forecast (one season)
    out = [
        Candidate("seasonal_naive", SeasonalNaive(m), min_points=max(m, 1)),
        *([Candidate("naive", SeasonalNaive(1), min_points=1)] if season else []),
        Candidate("damped", DampedHoltWinters(seasonality=season), min_points=start),
        Candidate("theta", Theta(seasonality=season), min_points=start),
        Candidate("mean", Mean(), min_points=1),
    ]
    if season:
        out += [
            Candidate(
                "damped_mul",
                DampedHoltWinters(seasonality=m, multiplicative=True),
                positive=True,
                min_points=start,
            ),
            Candidate(
                "theta_mul",
                Theta(seasonality=m, multiplicative=True),
                positive=True,
                min_points=start,
            ),
        ]
    return out
