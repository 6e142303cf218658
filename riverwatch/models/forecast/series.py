"""Per-series online forecasting: candidates side by side, conformal intervals, anomalies.

(One class, whose attributes are what a snapshot pickles; its forecasting from the latest
point, which shares that state, is its base class in models.forecast.horizon, and its pieces
that need no state of its own live beside it: candidates, select, intervals, state.)

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
from typing import Any

import numpy as np

from riverwatch.models.forecast.calendar import Calendar, detect
from riverwatch.models.forecast.candidates import NAIVE, Candidate, make_candidates
from riverwatch.models.forecast.horizon import HorizonForecast
from riverwatch.models.forecast.intervals import Conformal
from riverwatch.models.forecast.select import scored_steps
from riverwatch.models.forecast.types import ForecastConfig, Step, Update, period_for

__all__ = ["ForecastConfig", "SeriesForecaster", "Step", "Update", "period_for"]

# 2: forecasts remember whether their step's selection had settled; 3: the seasonal naive,
# naive, damped trend and Theta candidates, and the naive forecasts' selection handicap; 4:
# scored steps (rings instead of horizon x horizon arrays), the combination, per-step scales


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


class SeriesForecaster(HorizonForecast):
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
