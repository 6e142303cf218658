"""The horizon forecast of one series: every candidate's forecast from the latest point, the
forecast that serves each step (a candidate or the combination: the rows), its intervals and
the one-step anomaly band.

:class:`HorizonForecast` is the forecasting half of
:class:`~riverwatch.models.forecast.series.SeriesForecaster`, which applies the points (scores
the earlier forecasts, flags anomalies, lets the candidates learn) and reads its state out.
It is a base class, not a part the forecaster holds, because a snapshot pickles the
forecaster's attributes as they are (:mod:`riverwatch.models.forecast.state`): on the one
object, neither the state's layout nor the snapshots' bytes depend on how its code is split.
The attributes below are the forecaster's, set in its ``__init__``, declared here for the type
checker only.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from riverwatch.models.forecast.calendar import Calendar, fourier
from riverwatch.models.forecast.candidates import AGGREGATE, DIRECT, NAIVE, Candidate
from riverwatch.models.forecast.intervals import (
    Conformal,
    fill_offsets,
    floor_thin,
    one_step_band,
)
from riverwatch.models.forecast.robust import trim_for
from riverwatch.models.forecast.select import rolling_errors, serve, step_columns
from riverwatch.models.forecast.types import ForecastConfig, Step

if TYPE_CHECKING:
    from riverwatch.models.forecast.series import _Served

COMBINATION = "combination"


class HorizonForecast:
    """The forecasting half of a series' forecaster (see the module docstring)."""

    config: ForecastConfig
    calendar: Calendar | None
    candidates: list[Candidate]
    offset: float
    scale: float
    grid: np.ndarray
    handicap: np.ndarray
    err_num: np.ndarray
    err_den: np.ndarray
    one_step_mae: float
    pending: np.ndarray
    served: _Served
    source: np.ndarray
    band: float
    conformal: Conformal
    resid1: np.ndarray
    steps: tuple[Step, ...]
    _features: dict[float, dict[str, float]]

    @property
    def names(self) -> list[str]:
        """The rows' names: the candidates, then the combination."""
        return [c.name for c in self.candidates] + [COMBINATION]

    def _start_rows(self) -> None:
        """The selection's state for the candidates and the combination, empty."""
        cfg = self.config
        rows = len(self.candidates) + 1
        # The naive forecasts' errors count ``naive_margin`` less in the selection: another
        # forecast serves a step only if it beats them by that much. Rolling h-step errors
        # are noisy (and strongly autocorrelated at long steps); switching to a forecast that
        # is only as good costs more than it gains (the euro-area orders of issue 18, +12:
        # 1.22 -> 1.09 of the seasonal naive MAE).
        self.handicap = np.array(
            [1 - cfg.naive_margin if c.name in NAIVE else 1.0 for c in self.candidates] + [1.0]
        )
        self.err_num = np.zeros((rows, len(self.grid)))
        self.err_den = np.zeros((rows, len(self.grid)))
        self.pending = np.full((rows, self.pending.shape[1]), np.nan, dtype=np.float32)

    def _candidate_forecasts(self, ts: float) -> tuple[list[float], np.ndarray, np.ndarray]:
        """The future timestamps, every candidate's forecast of them (one row each, plus the
        combination's row) and which rows are ready."""
        h = self.config.horizon
        assert self.calendar is not None
        future = self.calendar.future(ts, h)
        cal = self.calendar
        xs = None
        if cal.cycles:  # consecutive forecasts share all but one future timestamp
            known = self._features
            self._features = {t: known[t] if t in known else fourier(cal, t) for t in future}
            xs = list(self._features.values())
        c = len(self.candidates)
        now = np.full((c + 1, h), np.nan)
        for i, cand in enumerate(self.candidates):
            got = cand.forecast(future, cal, xs)
            if got is not None:
                now[i] = np.asarray(got) + self.offset
        ready = ~np.isnan(now[:, 0])
        ready[c] = ready[:c].any()
        return future, now, ready

    def _forecast_all(self, ts: float, at: np.ndarray) -> None:
        cfg, h = self.config, self.config.horizon
        future, now, ready = self._candidate_forecasts(ts)
        cols = step_columns(self.grid, h)
        err, at_step = rolling_errors(self.err_num, self.err_den, ready)  # rows x scored steps
        # The direct regression and the temporal aggregates serve (and are combined) from
        # their first steps on.
        names = np.array(self.names)
        err[np.ix_(names == DIRECT, self.grid < cfg.direct_from)] = np.inf
        err[np.ix_(np.isin(names, AGGREGATE), self.grid < cfg.aggregate_from)] = np.inf
        best = serve(now, err[:, cols], self.handicap, ready, cfg.combine, cfg.combine_from,
                     cfg.combine_within, trim_for(cfg, self.calendar))  # fmt: skip
        self.pending[:, at] = now[:, self.grid - 1]
        # Until every ready row has errors at step s, rolling_errors() compares them at a
        # shorter step, and at first only the quick warm-up models are ready: their s-step
        # forecasts lag the trend and the season, so their residuals are large and mostly of
        # one sign. Kept in the window (for ``window`` points) they would shift the signed
        # quantiles of the settled forecasts that serve afterwards, as far as intervals that
        # exclude their own forecast. Conformal calibration needs scores exchangeable with
        # the new one, i.e. from the same procedure: only settled forecasts calibrate (see
        # SeriesForecaster._apply). Unsettled ones are still published, filled from calibrated
        # steps, and still count in the realised coverage and the adaptive alpha.
        self.served.settled[at] = (self.err_den[ready] > 0).all(axis=0) & ready.any()
        value = now[best, np.arange(h)]
        unit, units = self._step_units(err, best[self.grid - 1], at_step)
        lo, hi = self.conformal.offsets()
        # No calibrated offsets yet, or too few independent residuals behind them: at least
        # a normal interval, sigma ~ 1.25 x the mean abs error.
        z = NormalDist().inv_cdf(0.5 + cfg.coverage / 2)
        conf = self.conformal
        floor_thin(lo, hi, conf.counts(), self.grid, conf.min_count, 1.2533, z)
        fill_offsets(lo, hi, 1.2533, z)
        lo, hi = lo * units, hi * units
        steps = np.arange(1, h + 1)
        lo_h, hi_h = np.interp(steps, self.grid, lo), np.interp(steps, self.grid, hi)
        # The anomaly band widens the nominal one-step interval (not the adapted one: a run
        # of misses must not narrow it), from a longer window than the intervals' for a
        # steadier threshold, symmetrically on its wider side: a skewed window must never
        # put the forecast itself outside the band.
        half = one_step_band(self.resid1, cfg.coverage, cfg.min_calibration)
        self.band = cfg.anomaly_width * unit * half
        sv = self.served
        sv.value[at], sv.scale[at] = value[self.grid - 1], units
        sv.lower[at], sv.upper[at] = sv.value[at] + lo, sv.value[at] + hi
        self.source = best.astype(np.int16)
        self.steps = tuple(
            Step(t, float(v), float(v + a), float(v + b))
            for t, v, a, b in zip(future, value, lo_h, hi_h, strict=True)
            if not math.isnan(v)
        )

    def _step_units(
        self, err: np.ndarray, sel: np.ndarray, at_step: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """The one-step unit and each scored step's error scale: the rolling error there of
        the forecast serving it (``sel``; one step: the served forecasts' own). While that
        step is not scored yet, the error at the longest scored step grown linearly to this
        one: the early forecasts of a trending series miss by a trend that adds up step by
        step, and the random walk's sqrt growth left their intervals covering 0.4-0.7 at +12
        (issue 18's quarterly series); no error at all: the one-step unit, grown the same
        way."""
        unit = self.one_step_mae if self.one_step_mae > 0 else self.scale
        unit = unit if unit > 0 else 1.0
        own = err[sel, np.arange(len(self.grid))] * self.grid / self.grid[at_step]
        units = np.where(np.isfinite(own) & (own > 0), own, unit * self.grid)
        units[0] = unit
        return unit, units
