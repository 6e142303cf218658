"""The value types of the forecasters: their configuration and what an update returns."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from riverwatch.core.parsing import parse_periods


@dataclass(frozen=True)
class ForecastConfig:
    """Knobs of one series' forecaster (the workers build it from settings).

    ``horizon``: steps forecast; ``coverage``: of the intervals; ``window``: residuals kept
    per step (a step h's own quantiles alone make its interval only from 19 x h of them at
    90%, so at 200 never from step 11 on: models.forecast.intervals.floor_thin);
    ``anomaly_width``: the anomaly band is the one-step interval widened this many times
    around the forecast (1 flags 1 - coverage of normal points); ``anomaly_run``:
    consecutive points outside it before an alert; ``cooldown``: points after an alert
    before the next one; ``relearn_after``: anomalous points are learned clipped to the band,
    and a run this long is a level shift: the models' level moves by the run's median
    residual, so they continue at the new level without relearning; ``min_calibration``:
    one-step residuals needed before flagging; ``anomaly_window``: one-step residuals the
    band's quantile is taken from (more than ``window``: a steadier threshold);
    ``halflife``: points, of the rolling errors; ``adapt_rate``: step of the adaptive
    conformal update (0: plain split conformal); ``naive_margin``: a candidate serves a
    step instead of the seasonal naive (or naive) forecast only if its rolling error there
    is this fraction lower; ``combine``: candidates averaged (inverse-error weighted) into the
    combination forecast at each step (1: the best candidate alone); ``combine_from``: the
    first step the combination always serves (models.forecast.select.serve; chosen on the
    benchmark's tuning series: at +12 it beat the per-step selection there, at +3 and +6 it
    made no clear difference);
    ``combine_within``: from that step on, only candidates whose error is within this fraction
    of the lowest enter it (the widest pool, on the tuning series, that keeps the simulator
    seeds' +12 error within 2% of the selection's: wider pools helped the tuning series and
    cost the simulator series, whose calendar regression is far ahead of the rest);
    ``direct_from``: the first step the direct regression (models.forecast.direct) may serve
    or enter a combination at (it is scored at every step); 0: it is not run (the default:
    on the tuning series it helped steps 1-6 by 1-2% and step 12 by under 0.2%, short of the
    rule set for it, see README "Forecasting benchmark"); ``aggregate_from``: the same for the
    temporal aggregates (models.forecast.aggregate), 0: not run (the default: on the tuning
    series they took MAE at +12 down by 0.4%, short of that rule); ``combine_trim``: from
    ``combine_from`` on, on series whose season is at most ``trim_max_period`` points
    (hourly, monthly, quarterly, yearly, none), the combination is the trimmed mean of this
    many best-ranked candidates instead of the inverse-error pool (models.forecast.robust;
    0: the pool everywhere; chosen on the wider tuning set of bench.forecast_tuning, README
    "Forecasting benchmark", session 13).
    """

    horizon: int = 60
    coverage: float = 0.9
    window: int = 200
    anomaly_width: float = 2.25
    anomaly_run: int = 1
    cooldown: int = 10
    relearn_after: int = 3
    min_calibration: int = 50
    anomaly_window: int = 1000
    halflife: float = 50.0
    adapt_rate: float = 0.01
    warmup: int = 4
    max_period: int = 1440
    naive_margin: float = 0.1
    combine: int = 3
    combine_from: int = 12
    combine_within: float = 0.15
    direct_from: int = 0
    aggregate_from: int = 0
    combine_trim: int = 4
    trim_max_period: int = 24


@dataclass(frozen=True)
class Step:
    """One horizon step of a forecast: epoch timestamp, value and interval bounds."""

    timestamp: float
    value: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Update:
    """What applying one point produced.

    ``anomaly``: the point left its anomaly band ``expected`` (``forecast`` was the one-step
    forecast); ``alert``: this point starts an alert (run reached, not cooling down);
    ``steps``: the new forecast (empty while the series warms up); ``model``: the one-step
    model serving it.
    """

    timestamp: float
    value: float
    anomaly: bool = False
    alert: bool = False
    forecast: float | None = None
    expected: tuple[float, float] | None = None
    steps: tuple[Step, ...] = ()
    model: str | None = None


def period_for(series_id: str, overrides: Mapping[str, int] | str) -> int | None:
    """The configured period of a series: the first fnmatch pattern of ``overrides``
    (RIVERWATCH_FORECAST_SEASONALITY, parsed by the settings; or its ``"id=12,sim.*=1440"``
    text) that matches it.

    >>> period_for("bench.airline", "bench.air*=12, other=7")
    12
    """
    periods = parse_periods(overrides) if isinstance(overrides, str) else overrides
    for pattern, period in periods.items():
        if fnmatch.fnmatchcase(series_id, pattern):
            return period
    return None
