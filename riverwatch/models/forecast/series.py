"""Per-series online forecasting: candidates side by side, conformal intervals, anomalies.

(Over 300 lines on purpose: one class, whose attributes are what a snapshot pickles; its
pieces that need no state of its own live beside it: candidates, select, intervals, state.)

A :class:`SeriesForecaster` is the whole state of one metric series. ``update(ts, value)``
applies one point (ignoring late and duplicate ones), scores every candidate's earlier
forecasts against it, flags it when it leaves its one-step anomaly band, learns it, and
returns the new horizon forecast. Per horizon step the candidate with the lowest rolling
(exponentially weighted) absolute error at that step serves, so a series may take its
one-step forecast from one model and its day-ahead forecast from another; the naive
forecasts' errors are discounted by ``naive_margin`` so another model must clearly beat
them. From step ``combine_from`` on the combination of the best candidates serves instead
(models.forecast.select.serve). A step's conformal intervals are calibrated only on
forecasts served once the selection at that step had settled (every ready candidate scored
at that step): warm-up forecasts come from another procedure. The state pickles
(:mod:`riverwatch.models.forecast.state`) and a restored state continues exactly.

>>> f = SeriesForecaster("demo", ForecastConfig(horizon=3, window=50))
>>> ups = [f.update(60.0 * i, 10.0 + (i % 2)) for i in range(40)]
>>> f.update(60.0 * 39, 99.0) is None, f.late          # a duplicate timestamp is ignored
(True, 1)
>>> [p.timestamp for p in f.forecast()] == [60.0 * 40, 60.0 * 41, 60.0 * 42]
True
>>> all(p.lower <= p.value <= p.upper for p in f.forecast())
True
>>> from riverwatch.models.forecast.state import dump_state, load_state
>>> g = load_state(dump_state(f))
>>> g.update(60.0 * 40, 10.0) == f.update(60.0 * 40, 10.0)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from riverwatch.models.forecast.calendar import Calendar, detect, fourier
from riverwatch.models.forecast.candidates import (
    AGGREGATE,
    DIRECT,
    NAIVE,
    Candidate,
    make_candidates,
)
from riverwatch.models.forecast.intervals import Conformal, fill_offsets, one_step_band
from riverwatch.models.forecast.robust import trim_for
from riverwatch.models.forecast.select import rolling_errors, scored_steps, serve, step_columns
from riverwatch.models.forecast.types import ForecastConfig, Step, Update, period_for

__all__ = ["ForecastConfig", "SeriesForecaster", "Step", "Update", "period_for"]

# 2: forecasts remember whether their step's selection had settled; 3: the seasonal naive,
# naive, damped trend and Theta candidates, and the naive forecasts' selection handicap; 4:
# scored steps (rings instead of horizon x horizon arrays), the combination, per-step scales
COMBINATION = "combination"


@dataclass
class _Served:
    """The served forecasts awaiting their score: per scored step s a ring of the last s
    origins (flat, see models.forecast.select) with the value, bounds, error scale and whether
    that step's selection had settled."""

    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    scale: np.ndarray
    settled: np.ndarray


class SeriesForecaster:
    """The complete, picklable state of one series (see the module docstring)."""

    def __init__(self, series_id: str, config: ForecastConfig, period: int | None = None):
        self.series_id = series_id
        self.config = config
        self.period = period
        self.buffer: list[tuple[float, float]] = []  # points before the calendar is known
        self.calendar: Calendar | None = None
        self.candidates: list[Candidate] = []
        self.handicap = np.ones(0)  # per row (candidates, then the combination): error factor
        self.n = 0
        self.last_ts: float | None = None
        self.last_value = math.nan
        self.late = 0
        self.anomalies = 0
        self.alerts = 0
        self.run = 0
        self.shift: list[float] = []  # residuals of the current anomaly run
        self.offset = 0.0  # sum of the level shifts accepted: the models see y - offset
        self.last_alert = -(10**9)
        self.scale = math.nan  # EW mean |one-step change|: the error unit before any error
        grid = scored_steps(config.horizon)
        self.grid = grid
        self.ring = np.concatenate([[0], np.cumsum(grid)[:-1]])  # each step's ring start
        g, size = len(grid), int(grid.sum())
        self.err_num = np.zeros((0, g))
        self.err_den = np.zeros((0, g))
        self.one_step_mae = math.nan
        self.pending = np.zeros((0, size), dtype=np.float32)
        nan = np.full(size, np.nan)
        self.served = _Served(nan.copy(), nan.copy(), nan.copy(), nan, np.zeros(size, bool))
        self.source = np.zeros(config.horizon, dtype=np.int16)  # rows serving the latest
        self.band = math.nan  # half-width of the latest one-step forecast's anomaly band
        self.conformal = Conformal(g, config.window, config.coverage, config.adapt_rate)
        self.resid1 = np.full(config.anomaly_window, np.nan, dtype=np.float32)  # for the band
        self.steps: tuple[Step, ...] = ()
        self._features: dict[float, dict[str, float]] = {}  # a cache: not in snapshots

    def __getstate__(self) -> dict[str, Any]:
        """What a snapshot holds: everything but the calendar features' cache."""
        return {k: v for k, v in vars(self).items() if k != "_features"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._features = {}

    @property
    def names(self) -> list[str]:
        """The rows' names: the candidates, then the combination."""
        return [c.name for c in self.candidates] + [COMBINATION]

    # -- applying points -----------------------------------------------------------------
    def update(self, ts: float, value: float) -> Update | None:
        """Apply one point; None (and ``late`` + 1) when ts <= the last applied timestamp."""
        if self.last_ts is not None and ts <= self.last_ts:
            self.late += 1
            return None
        self.last_ts = ts
        if self.calendar is None:
            self.buffer.append((ts, value))
            need = 2 if self.period is not None else self.config.warmup
            if len(self.buffer) < need:
                return Update(ts, value)
            self._start()
            out = Update(ts, value)
            for t, v in self.buffer:
                out = self._apply(t, v)
            self.buffer = []
            return out
        return self._apply(ts, value)

    def _start(self) -> None:
        cfg = self.config
        self.calendar = detect([t for t, _ in self.buffer], self.period, cfg.max_period)
        direct = tuple(self.grid.tolist()) if cfg.direct_from else None  # its scored steps
        self.candidates = make_candidates(self.calendar, direct, cfg.aggregate_from > 0)
        self._start_rows()

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

    def _apply(self, ts: float, y: float) -> Update:
        cfg = self.config
        # The ring slot of step s holding the forecast made s points ago: its origin is
        # n - s, and (n - s) % s == n % s, which the forecast made now then takes over.
        at = self.ring + self.n % self.grid
        ok = self.n >= self.grid
        past = np.where(ok, self.pending[:, at], np.nan)
        valid = ~np.isnan(past)
        decay = 0.5 ** (1 / cfg.halflife)
        self.err_num = self.err_num * np.where(valid, decay, 1) + np.where(valid, abs(past - y), 0)
        self.err_den = self.err_den * np.where(valid, decay, 1) + valid
        sv = self.served
        served = np.where(ok, sv.value[at], np.nan)
        has = ~np.isnan(served)
        self.conformal.record((sv.lower[at] <= y) & (y <= sv.upper[at]), has)
        anomaly, expected, y_learn = self._check(y, served[0], self.band)
        alert = False
        if anomaly:
            self.run += 1
            self.shift.append(y - float(served[0]))
            if self.run == cfg.relearn_after:
                # A level shift: move the models' origin by it instead of feeding them the
                # jump, which seasonal models would replay as a false jump a season later.
                self.offset += float(np.median(self.shift))
            alert = self.run == cfg.anomaly_run and self.n - self.last_alert > cfg.cooldown
            self.last_alert = self.n if alert else self.last_alert
            self.anomalies += 1
            self.alerts += alert
        else:
            self.run, self.shift = 0, []
        # Scores are residuals over the error scale of their step at the origin (locally
        # weighted conformal): intervals follow a series whose errors grow with its level or
        # its volatility. An anomaly enters clipped to its band: it cannot blow the intervals
        # up, yet a window that has become too narrow still widens again.
        scores = (y_learn - served) / sv.scale[at]
        self.conformal.add(np.where(sv.settled[at] & ok, scores, np.nan))
        self.resid1[self.n % len(self.resid1)] = scores[0]
        if has[0]:
            self.one_step_mae = _ew(self.one_step_mae, abs(y_learn - served[0]), decay)
        x = y_learn - self.offset  # what the models see
        # The naive forecasts would repeat a clipped spike as it was learned, at the band's
        # edge, and flag the normal point after it (or a season later): they learn the
        # one-step forecast instead, as if the point had come as expected.
        x_naive = float(served[0]) - self.offset if y_learn != y else x
        if not math.isnan(self.last_value):
            self.scale = _ew(self.scale, abs(x - self.last_value), decay)
        for cand in self.candidates:
            assert self.calendar is not None
            cand.learn(ts, x_naive if cand.name in NAIVE else x, self.calendar)
        self.last_value = x
        self._forecast_all(ts, at)
        self.n += 1
        fc = None if math.isnan(served[0]) else float(served[0])
        return Update(ts, y, anomaly, alert, fc, expected, self.steps, self.model)

    def _check(
        self, y: float, fc: float, half: float
    ) -> tuple[bool, tuple[float, float] | None, float]:
        """(anomalous?, the anomaly band, the value to learn) for an observation."""
        if math.isnan(fc) or math.isnan(half):
            return False, None, y
        band = (float(fc - half), float(fc + half))
        if band[0] <= y <= band[1]:
            return False, band, y
        # A spike learned as observed would drag the next forecasts after it. From the
        # ``relearn_after``-th point of a run on, the level has moved (see _apply): learn y.
        clipped = min(max(y, band[0]), band[1])
        return True, band, clipped if self.run + 1 < self.config.relearn_after else y

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
        # _apply). Unsettled ones are still published, filled from calibrated steps, and
        # still count in the realised coverage and the adaptive alpha.
        self.served.settled[at] = (self.err_den[ready] > 0).all(axis=0) & ready.any()
        value = now[best, np.arange(h)]
        unit, units = self._step_units(err, best[self.grid - 1], at_step)
        lo, hi = self.conformal.offsets()
        # No calibrated offsets yet: a normal interval, sigma ~ 1.25 x the mean abs error.
        fill_offsets(lo, hi, 1.2533, NormalDist().inv_cdf(0.5 + cfg.coverage / 2))
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

    # -- reading -------------------------------------------------------------------------
    def forecast(self, horizon: int | None = None) -> tuple[Step, ...]:
        """The latest forecast (its first ``horizon`` steps); empty while warming up."""
        return self.steps[: horizon or self.config.horizon]

    @property
    def model(self) -> str | None:
        """The candidate serving the latest one-step forecast (None while warming up)."""
        if not self.steps:
            return None
        return self.names[int(self.source[0])]

    def step_info(self, horizon: int | None = None) -> list[tuple[str | None, float | None]]:
        """Per step of the latest forecast: the forecast serving it (a candidate or the
        combination) and the realised coverage of that step's intervals so far (None: not
        scored yet, or a step between the scored ones of models.forecast.select)."""
        if not self.steps:
            return []
        names, realised = self.names, self.conformal.realised()
        by_step = dict(zip(self.grid.tolist(), realised, strict=True))
        n = len(self.forecast(horizon))
        return [(names[int(self.source[i])], by_step.get(i + 1)) for i in range(n)]

    def summary(self) -> dict[str, Any]:
        """Model, rolling one-step MAE, realised one-step coverage and counters (JSON-ready).

        ``as_of`` is the epoch of the last applied point (None before the first).
        """
        return {
            "series_id": self.series_id,
            "model": self.model,
            "rolling_mae": None if math.isnan(self.one_step_mae) else float(self.one_step_mae),
            "coverage": self.conformal.realised()[0],
            "points": self.n + len(self.buffer),
            "late": self.late,
            "anomalies": self.anomalies,
            "alerts": self.alerts,
            "period": self.calendar.period if self.calendar else self.period,
            "horizon": self.config.horizon,
            "as_of": self.last_ts,
        }


def _ew(average: float, x: float, decay: float) -> float:
    """An exponentially weighted average updated with ``x`` (NaN: none yet)."""
    return x if math.isnan(average) else decay * average + (1 - decay) * x
