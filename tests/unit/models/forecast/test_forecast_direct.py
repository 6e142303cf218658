"""The direct multi-step regression (models.forecast.direct) and its place in the selection."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import pytest

from riverwatch.models.forecast.candidates import DIRECT
from riverwatch.models.forecast.direct import Direct
from riverwatch.models.forecast.series import ForecastConfig, SeriesForecaster
from riverwatch.models.forecast.state import dump_state, load_state

MONTHS = [datetime(2000 + i // 12, i % 12 + 1, 1, tzinfo=UTC).timestamp() for i in range(600)]
SEASON = 10 * np.sin(2 * np.pi * np.arange(12) / 12) + 3 * np.cos(4 * np.pi * np.arange(12) / 12)


def ar1(n: int, phi: float, seed: int, mean: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.empty(n)
    y[0] = mean
    for i in range(1, n):
        y[i] = mean + phi * (y[i - 1] - mean) + rng.normal(0, 1.0)
    return y


def relative_mae(model: Direct, ys: np.ndarray, h: int, start: int, naive_lag: int) -> float:
    """MAE of the model's h-step forecasts over the naive forecast's (the value ``naive_lag``
    before the target's season position), online: learn a point, forecast, move on."""
    ours, naive = [], []
    for t, y in enumerate(ys[:-h]):
        model.learn_one(float(y))
        if t >= start:
            ours.append(abs(model.forecast(h)[h - 1] - ys[t + h]))
            naive.append(abs(ys[t + h - naive_lag] - ys[t + h]))
    return float(np.mean(ours) / np.mean(naive))


@pytest.mark.parametrize("seed", [1, 2])
def test_it_learns_where_a_mean_reverting_series_goes_12_steps_ahead(seed: int) -> None:
    # AR(1), phi 0.8: 12 steps ahead the deviation has all but faded (0.8**12 = 0.07), so the
    # mean beats the last value by about sqrt(2) in MAE; the naive forecast carries it over.
    ys = ar1(2000, 0.8, seed)
    assert relative_mae(Direct(seasonality=0), ys, 12, 300, naive_lag=12) < 0.85
    # Prior-bound (no data counts against a huge ridge), it is the naive forecast itself.
    assert relative_mae(Direct(seasonality=0, ridge=1e12), ys, 12, 300, 12) == pytest.approx(1)


def test_with_a_season_it_starts_as_the_seasonal_naive_forecast_and_learns_the_drift() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(400)
    ys = 100 + 0.5 * t + SEASON[t % 12] + rng.normal(0, 1.0, len(t))
    d = Direct(seasonality=12)
    for y in ys[:13]:
        d.learn_one(float(y))
    assert d.forecast(24) == pytest.approx(list(ys[1:13]) * 2)  # untrained: last year's
    # A year ahead the seasonal naive forecast misses by the year's drift (6); the regression
    # learns it.
    assert relative_mae(Direct(seasonality=12), ys, 12, 100, naive_lag=12) < 0.4


def test_its_state_is_bounded_and_pickles_exactly() -> None:
    ys = ar1(6000, 0.9, 4)
    d = Direct(seasonality=24)
    sizes = []
    for i, y in enumerate(ys):
        d.learn_one(float(y))
        if i in (999, 5999):
            sizes.append(len(pickle.dumps(d)))
    assert sizes[0] == sizes[1] < 20_000
    e = pickle.loads(pickle.dumps(d))
    e.learn_one(1.0)
    d.learn_one(1.0)
    assert e.forecast(60) == d.forecast(60)
    assert np.isnan(d.clone().forecast(1)[0])  # a clone (a reset candidate) starts afresh


def served_by_direct(direct_from: int) -> set[int]:
    """The steps (1-based) the direct regression served, alone, on a mean-reverting series."""
    ys = ar1(500, 0.7, 6, mean=20.0)
    f = SeriesForecaster("s", ForecastConfig(horizon=12, direct_from=direct_from))
    steps: set[int] = set()
    for t, y in zip(MONTHS, ys, strict=False):
        f.update(t, float(y))
        steps |= {i + 1 for i, (name, _) in enumerate(f.step_info()) if name == DIRECT}
    return steps


def test_the_direct_regression_serves_only_from_its_first_step_on() -> None:
    assert 1 in served_by_direct(1)  # it does serve the next step when allowed to
    assert min(served_by_direct(3), default=3) >= 3


def test_by_default_no_direct_regression_runs_and_snapshots_keep_their_layout() -> None:
    # Off by default (ForecastConfig.direct_from = 0): the candidates, and so the rows a
    # snapshot holds, are those of the last release; switched on, it is one more candidate.
    ys = 100 + SEASON[np.arange(60) % 12]
    names = {}
    for direct_from in (0, 6):
        f = SeriesForecaster("s", ForecastConfig(horizon=12, direct_from=direct_from))
        for t, y in zip(MONTHS, ys, strict=False):
            f.update(t, float(y))
        names[direct_from] = f.names
        g = load_state(dump_state(f))
        assert g.update(MONTHS[60], 100.0) == f.update(MONTHS[60], 100.0)
    assert DIRECT not in names[0] and [n for n in names[6] if n != DIRECT] == names[0]
