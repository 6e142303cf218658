"""The literature's candidates (seasonal naive, damped trend, Theta) and per-step selection."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest
import river

from riverwatch.core.errors import ModelError
from riverwatch.models.forecast.calendar import detect
from riverwatch.models.forecast.candidates import make_candidates
from riverwatch.models.forecast.estimators import DampedHoltWinters, SeasonalNaive, Theta
from riverwatch.models.forecast.select import combine, serve, serving
from riverwatch.models.forecast.series import ForecastConfig, SeriesForecaster
from riverwatch.models.forecast.state import dump_state, load_state

MONTHS = [datetime(2000 + i // 12, i % 12 + 1, 1, tzinfo=UTC).timestamp() for i in range(400)]
SEASON = 10 * np.sin(2 * np.pi * np.arange(12) / 12) + 3 * np.cos(4 * np.pi * np.arange(12) / 12)


def test_seasonal_naive_forecasts_the_same_season_of_the_last_cycle() -> None:
    m = SeasonalNaive(seasonality=12)
    ys = [float(i) for i in range(30)]
    for y in ys:
        m.learn_one(y)
    got = m.forecast(24)
    assert got[:12] == ys[-12:] and got[12:] == ys[-12:]
    last = SeasonalNaive(seasonality=1)
    for y in ys:
        last.learn_one(y)
    assert last.forecast(3) == [29.0, 29.0, 29.0]


@pytest.mark.parametrize("multiplicative", [False, True])
def test_damped_holt_winters_learns_the_season_and_damps_the_trend(multiplicative: bool) -> None:
    t = np.arange(240)
    level = 100 + 0.5 * t
    ys = level * (1 + SEASON[t % 12] / 100) if multiplicative else level + SEASON[t % 12]
    m = DampedHoltWinters(
        alpha=0.3, beta=0.1, gamma=0.2, phi=0.9, seasonality=12, multiplicative=multiplicative
    )
    for y in ys:
        m.learn_one(float(y))
    got = np.array(m.forecast(24))
    future = np.arange(240, 264)
    truth = 100 + 0.5 * future
    truth = (
        truth * (1 + SEASON[future % 12] / 100) if multiplicative else truth + SEASON[future % 12]
    )
    assert abs(got[0] - truth[0]) < 1.0  # the season, level and trend are learned
    # Damped: the trend added per step shrinks, so two years ahead the forecast has fallen
    # behind the straight line by far more than one step ahead.
    shortfall = truth / got - 1 if multiplicative else truth - got
    assert shortfall[12:].mean() > 3 * abs(shortfall[0])


def test_the_damped_trend_shrinks_by_phi_per_step() -> None:
    m = DampedHoltWinters(alpha=0.5, beta=0.3, phi=0.8)
    for y in np.arange(50.0):
        m.learn_one(float(y))
    steps = np.diff(m.forecast(10))
    assert steps == pytest.approx(steps[0] * 0.8 ** np.arange(9))
    assert steps[0] > 0.5  # it learned the slope of 1 (damped once)


@pytest.mark.parametrize("multiplicative", [False, True])
def test_theta_drifts_by_half_the_slope_and_beats_seasonal_naive(multiplicative: bool) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(300)
    ys = 50 + 0.3 * t + SEASON[t % 12] + rng.normal(0, 0.5, len(t))
    theta, naive = Theta(seasonality=12, multiplicative=multiplicative), SeasonalNaive(12)
    err_theta, err_naive = [], []
    for i, y in enumerate(ys[:-12]):
        theta.learn_one(float(y))
        naive.learn_one(float(y))
        if i >= 60:
            err_theta.append(abs(theta.forecast(12)[11] - ys[i + 12]))
            err_naive.append(abs(naive.forecast(12)[11] - ys[i + 12]))
    assert np.mean(err_theta) < 0.7 * np.mean(err_naive)  # naive misses a year of trend
    if not multiplicative:  # a year on, the same season: 12 steps of half the slope (0.3)
        got = theta.forecast(13)
        assert got[12] - got[0] == pytest.approx(12 * 0.15, abs=0.3)
    assert pickle.loads(pickle.dumps(theta)).forecast(3) == theta.forecast(3)


def test_every_candidate_is_offered_and_a_clone_starts_afresh() -> None:
    cal = detect(MONTHS[:4])
    names = [c.name for c in make_candidates(cal)]
    for name in ("seasonal_naive", "naive", "damped", "damped_mul", "theta", "theta_mul"):
        assert name in names
    non_seasonal = [c.name for c in make_candidates(detect([0.0, 10.0, 20.0]))]
    assert "seasonal_naive" in non_seasonal and "damped_mul" not in non_seasonal
    damped = DampedHoltWinters(seasonality=12)
    for y in range(30):
        damped.learn_one(float(y))
    assert np.isnan(damped.clone().forecast(1)[0])


def test_the_step_ahead_and_the_year_ahead_are_served_by_different_models() -> None:
    # An exact yearly pattern plus a persistent AR(1) disturbance: one month ahead the
    # disturbance is still there to be followed; a year ahead it has faded, and a model that
    # tracks the last value (or last year's) carries it over, so another model wins there.
    rng = np.random.default_rng(0)
    ar = np.zeros(len(MONTHS))
    for i in range(1, len(ar)):
        ar[i] = 0.85 * ar[i - 1] + rng.normal(0, 2.0)
    ys = 100 + SEASON[np.arange(len(MONTHS)) % 12] + ar
    f = SeriesForecaster("s", ForecastConfig(horizon=12))
    for t, y in zip(MONTHS, ys, strict=True):
        f.update(t, float(y))
    err = f.err_num / f.err_den  # horizon 12: every step is scored
    served = f.source
    names = f.names
    assert served[0] != served[11], [names[i] for i in served]
    # The one-step server has that step's lowest rolling error (up to the naive margin); from
    # step combine_from (12) on, the combination serves, and it beats the seasonal naive there.
    assert err[served[0], 0] <= err[:, 0].min() / (1 - f.config.naive_margin) + 1e-9
    assert names[served[11]] == "combination"
    assert err[served[11], 11] < err[names.index("seasonal_naive"), 11]
    # At +1 the winner beats the seasonal naive forecast clearly.
    naive = names.index("seasonal_naive")
    assert err[served[0], 0] < 0.7 * err[naive, 0]


# Rows: model a, the seasonal naive forecast (its errors count 10% less), model b, then the
# combination; two steps, the second one "far" (combine_from=2).
FC = np.array([[10.0, 10.0], [20.0, 20.0], [40.0, 40.0], [np.nan, np.nan]])
HANDICAP = np.array([1.0, 0.9, 1.0, 1.0])
READY = np.ones(4, dtype=bool)


def test_near_steps_are_selected_and_far_steps_served_by_the_discounted_combination() -> None:
    err = np.array([[1.0, 1.0], [1.05, 1.2], [2.0, 1.1], [1.5, 5.0]])
    now = FC.copy()
    best = serve(now, err, HANDICAP, READY, k=2, combine_from=2)
    # Step 1: the naive forecast's 1.05 counts as 0.945 < 1.0: it serves; the combination
    # there ranks by the errors as measured (a and the naive one, weights 1 : 1/1.05).
    assert best[0] == 1
    assert now[3, 0] == pytest.approx((10 / 1.0 + 20 / 1.05) / (1 / 1.0 + 1 / 1.05))
    # Step 2: the combination serves although its own rolling error (5.0) is the worst, and
    # it ranks by the discounted errors: the naive one (1.08) enters, b (1.1) does not; by the
    # errors as measured it would have been a and b.
    assert best[1] == 3
    assert now[3, 1] == pytest.approx((10 / 1.0 + 20 / 1.08) / (1 / 1.0 + 1 / 1.08))
    assert now[3, 1] != pytest.approx(combine(FC[:3, 1:], err[:3, 1:], 2)[0])


def test_a_far_step_combines_only_the_candidates_close_to_the_best() -> None:
    err = np.array([[1.0, 1.0], [1.05, 1.3], [2.0, 1.1], [1.5, 5.0]])
    now = FC.copy()
    best = serve(now, err, HANDICAP, READY, k=3, combine_from=2, within=0.1)
    # Step 2: a (1.0) and b (1.1) are within 10% of the best, the naive one (1.3 x 0.9 = 1.17)
    # is not: a and b only, weights 1 : 1/1.1.
    assert best[1] == 3
    assert now[3, 1] == pytest.approx((10 / 1.0 + 40 / 1.1) / (1 / 1.0 + 1 / 1.1))
    # A clearly better candidate (here: by half) serves alone.
    err[[1, 2], 1] = 2.0
    serve(now, err, HANDICAP, READY, k=3, combine_from=2, within=0.1)
    assert now[3, 1] == 10.0


def test_a_far_step_no_candidate_was_scored_at_is_still_selected() -> None:
    err = np.array([[1.0, np.inf], [1.2, np.inf], [2.0, np.inf], [1.5, np.inf]])
    now = FC.copy()
    best = serve(now, err, HANDICAP, READY, k=2, combine_from=2)
    assert np.isnan(now[3, 1]) and best[1] == 0  # the first ready row, in priority order


def test_without_far_steps_serving_is_the_per_step_selection() -> None:
    rng = np.random.default_rng(1)
    err = rng.uniform(0.5, 2.0, (4, 6))
    now = np.vstack([rng.normal(0, 1, (3, 6)), np.full((1, 6), np.nan)])
    best = serve(now, err, HANDICAP, READY, k=2, combine_from=7)
    assert best.tolist() == serving(err * HANDICAP[:, None], READY).tolist()
    assert now[3].tolist() == combine(now[:3], err[:3], 2).tolist()


def test_a_snapshot_written_before_combine_from_existed_carries_on() -> None:
    f = SeriesForecaster("s", ForecastConfig(horizon=12))
    for t, y in zip(MONTHS[:40], SEASON[np.arange(40) % 12], strict=True):
        f.update(t, float(y))
    del vars(f.config)["combine_from"]  # the config as the last release pickled it
    del vars(f.config)["combine_within"]
    g = load_state(dump_state(f))
    assert (g.config.combine_from, g.config.combine_within) == (12, 0.15)  # class defaults
    assert g.update(MONTHS[40], float(SEASON[40 % 12])) is not None and len(g.forecast()) == 12


def test_a_snapshot_of_an_older_format_is_refused() -> None:
    f = SeriesForecaster("s", ForecastConfig(horizon=3))
    data = pickle.loads(dump_state(f))
    data["format"] = 2
    with pytest.raises(ModelError, match="format 2"):
        load_state(pickle.dumps(data))


def format_3(f: SeriesForecaster) -> bytes:
    """A snapshot laid out as format 3 wrote it (horizon x horizon rings, no rows beyond the
    candidates) from the state of ``f``: what a worker of the last release stored."""
    h, c = f.config.horizon, len(f.candidates)
    old = SeriesForecaster.__new__(SeriesForecaster)
    kept = vars(f).copy()
    for key in ("grid", "ring", "source", "band", "_features"):
        kept.pop(key)
    source = np.zeros((h, h), dtype=np.int16)
    source[(f.n - 1) % h] = np.minimum(f.source, c - 1)
    band = np.full(h, np.nan)
    band[(f.n - 1) % h] = f.band
    kept |= {
        "pending": np.full((c, h, h), np.nan),
        "err_num": np.zeros((c, h)),
        "err_den": np.zeros((c, h)),
        "served": SimpleNamespace(source=source, band=band, value=np.full((h, h), np.nan)),
        "resid1": np.asarray(f.resid1, dtype=float),
        "features": {},
    }
    vars(old).update(kept)
    return pickle.dumps({"river": river.__version__, "format": 3, "state": old})


def test_a_snapshot_of_the_previous_format_carries_on() -> None:
    # Format 3 (the last release) is migrated, not dropped: the trained candidates, the
    # counters and the anomaly residuals are kept; the per-step selection starts afresh.
    rng = np.random.default_rng(5)
    ys = 100 + SEASON[np.arange(len(MONTHS)) % 12] + rng.normal(0, 1.0, len(MONTHS))
    f = SeriesForecaster("s", ForecastConfig(horizon=12))
    for t, y in zip(MONTHS[:200], ys[:200], strict=True):
        f.update(t, float(y))
    g = load_state(format_3(f))
    assert (g.n, g.late, g.anomalies, g.offset, g.steps) == (f.n, f.late, f.anomalies, 0.0, f.steps)
    assert g.model == f.model and np.array_equal(g.resid1, f.resid1, equal_nan=True)
    cal = g.calendar
    assert cal is not None
    future = cal.future(MONTHS[199], 12)
    assert [c.forecast(future, cal) for c in g.candidates] == [
        c.forecast(future, cal) for c in f.candidates
    ]
    assert g.err_den.sum() == 0 and g.conformal.counts().sum() == 0
    errors = []
    for i in range(200, 260):
        up = g.update(MONTHS[i], float(ys[i]))
        assert up is not None and len(up.steps) == 12
        errors.append(abs(up.steps[0].value - ys[i + 1]))
        assert all(s.lower < s.value < s.upper for s in up.steps)
    assert np.mean(errors) < 2.0  # noise sd 1: the trained models serve at once


def test_a_spike_is_not_repeated_by_the_naive_forecast_that_serves_after_it() -> None:
    # Minute points of an hourly wave: the season (a day) is far off, and the naive forecast
    # serves the next minute. A spike learned clipped to the band's edge would be repeated
    # as the next forecast and flag the normal point after it; the naive forecasts learn
    # the forecast instead.
    rng = np.random.default_rng(11)
    ys = 100 + 10 * np.sin(2 * np.pi * np.arange(300) / 60) + rng.normal(0, 1.0, 300)
    ys[220] += 30.0
    f = SeriesForecaster("s", ForecastConfig())
    ups = [f.update(1_767_225_600 + 60.0 * i, float(y)) for i, y in enumerate(ys)]
    assert ups[220] is not None and ups[220].model == "naive"
    assert [i for i, u in enumerate(ups) if u and u.anomaly] == [220]
    after = ups[221]
    assert after is not None and after.forecast == ups[220].forecast


def test_each_scored_step_scores_the_forecast_made_that_many_points_before() -> None:
    # The rings hold, per scored step s, the forecasts of the last s origins: the rolling
    # error at s must be that of |forecast from origin i - s at step s - y_i|, recomputed here
    # from the forecasts as they were made (the 60-step default: steps between are not held).
    rng = np.random.default_rng(8)
    ys = 100 + SEASON[np.arange(300) % 12] + np.cumsum(rng.normal(0, 1.0, 300))
    f = SeriesForecaster("s", ForecastConfig())
    assert f.grid.tolist() == [*range(1, 13), 18, 27, 41, 60]
    made: dict[int, np.ndarray] = {}  # origin -> rows x scored steps, as made
    forecast_all = f._forecast_all

    def spy(ts: float, at: np.ndarray) -> None:  # every origin, the replayed first ones too
        forecast_all(ts, at)
        made[f.n] = f.pending[:, at].astype(float)

    f._forecast_all = spy  # type: ignore[method-assign]
    for t, y in zip(MONTHS[:300], ys, strict=True):
        f.update(t, float(y))
    decay = 0.5 ** (1 / f.config.halflife)
    num, den = np.zeros_like(f.err_num), np.zeros_like(f.err_den)
    for i in range(len(ys)):
        for j, s in enumerate(f.grid):
            if i - s in made:
                e = np.abs(made[i - s][:, j] - ys[i])
                ok = ~np.isnan(e)
                num[ok, j] = num[ok, j] * decay + e[ok]
                den[ok, j] = den[ok, j] * decay + 1
    assert np.allclose(num, f.err_num, rtol=1e-5) and np.allclose(den, f.err_den)
    assert (f.err_den[:, -1] > 0).any()  # step 60 is scored too
