"""The trimmed-mean combination of the far steps on series with a season of at most 24 points."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from riverwatch.models.forecast.calendar import detect
from riverwatch.models.forecast.evaluate import evaluate_online
from riverwatch.models.forecast.robust import trim_for, trimmed
from riverwatch.models.forecast.select import serve
from riverwatch.models.forecast.series import ForecastConfig, SeriesForecaster

YEARS = [datetime(1960 + i, 1, 1, tzinfo=UTC).timestamp() for i in range(60)]
MONTHS = [datetime(2000 + i // 12, i % 12 + 1, 1, tzinfo=UTC).timestamp() for i in range(120)]
WEEKS = [7 * 86_400.0 * i for i in range(160)]


def transition(seed: int) -> list[float]:
    """A yearly rate that falls and levels off (a demographic transition), with noise."""
    t = np.arange(len(YEARS))
    noise = np.random.default_rng(seed).normal(0, 0.05, len(t))
    return (2 + 4 / (1 + np.exp((t - 20) / 5)) + noise).tolist()


def test_trimmed_drops_the_extremes_of_the_best_ranked() -> None:
    err = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0], [0.5, np.inf]])
    fc = np.array([[10.0, 1.0], [20.0, 2.0], [30.0, 3.0], [1000.0, 4.0], [-5.0, 99.0]])
    # step 1: the 4 best are -5, 10, 20, 30 -> (10 + 20) / 2; step 2: row 4 has no error
    assert trimmed(fc, err, 4).tolist() == [15.0, 2.5]
    assert np.isnan(trimmed(fc, np.full_like(err, np.inf), 4)).all()


def test_serve_uses_the_trimmed_mean_from_combine_from_on() -> None:
    err = np.array([[1.0, 1.0], [1.1, 1.1], [1.2, 1.2], [1.3, 1.3], [np.inf, np.inf]])
    fc = np.array([[10.0, 10.0], [11.0, 11.0], [12.0, 12.0], [100.0, 100.0], [np.nan] * 2])
    now = fc.copy()
    rows = serve(now, err, np.ones(5), np.array([1, 1, 1, 1, 1], bool), 3, 2, 0.15, trim=4)
    assert rows.tolist() == [0, 4]  # step 1 selected, step 2 the combination
    assert now[4, 1] == 11.5  # 10 and 100 trimmed away; the pool of 15% would give ~10.5
    pooled = fc.copy()
    serve(pooled, err, np.ones(5), np.array([1, 1, 1, 1, 1], bool), 3, 2, 0.15)
    assert pooled[4, 1] < 11.0


def test_only_series_with_a_season_of_at_most_a_day_of_hours_trim() -> None:
    config = ForecastConfig()
    assert config.combine_trim == 4
    assert trim_for(config, detect(YEARS[:4])) == 4  # yearly: no season
    quarters = [datetime(2000, m, 1, tzinfo=UTC).timestamp() for m in (1, 4, 7, 10)]
    assert trim_for(config, detect(quarters)) == 4
    assert trim_for(config, detect(MONTHS[:4])) == 4
    assert trim_for(config, detect([3600.0 * i for i in range(4)])) == 4  # hourly: 24
    assert trim_for(config, detect(WEEKS[:4])) == 0  # weekly: 52, the pool as before
    assert trim_for(config, detect([60.0 * i for i in range(4)])) == 0  # minutes: 1440
    assert trim_for(config, None) == 0


def test_weekly_forecasts_are_unchanged() -> None:
    t = np.arange(len(WEEKS))
    ys = (100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 52)).tolist()
    out = []
    for k in (0, 4):
        f = SeriesForecaster("w", ForecastConfig(horizon=12, combine_trim=k))
        for ts, y in zip(WEEKS, ys, strict=True):
            f.update(ts, y)
        out.append([s.value for s in f.forecast()])
    assert out[0] == out[1]


def test_trimming_beats_the_pool_twelve_years_ahead_on_a_levelling_decline() -> None:
    """Early on a trend model's short-step errors rank it first and the pool follows it past
    the turn; the trimmed mean of the four best does not (fails with combine_trim=0)."""
    got = {}
    for k in (0, 4):
        config = ForecastConfig(horizon=12, combine_trim=k)
        got[k] = sum(
            evaluate_online(YEARS, transition(seed), config, horizons=(12,)).mae[12]
            for seed in range(6)
        )
    assert got[4] < 0.9 * got[0]
