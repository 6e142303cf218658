"""Scoring forecasts with the online protocol: learn one point, forecast, move on.

The forecast made after learning point i is scored at step h against point i + h (by
index, as the models count steps), for every origin from ``start`` on. The same scorer reads
forecasts that came back through the running system (the benchmark) and forecasts made
in-process by :func:`evaluate_online` (the unit tests).

>>> ys = [float(i % 12) for i in range(48)]
>>> scores = evaluate_online(
...     [86400.0 * 30.5 * i for i in range(48)], ys, ForecastConfig(horizon=12))
>>> scores.points, scores.mae[1] < 1.0
(48, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from riverwatch.models.forecast.series import ForecastConfig, SeriesForecaster

# (lower, value, upper) of each step of one origin's forecast
Steps = Sequence[tuple[float, float, float]]


@dataclass
class Scores:
    """MAE and interval coverage per horizon step, anomaly precision and recall."""

    points: int = 0
    mae: dict[int, float] = field(default_factory=dict)
    coverage: dict[int, float] = field(default_factory=dict)
    scored: dict[int, int] = field(default_factory=dict)
    precision: float | None = None
    recall: float | None = None
    flagged: int = 0


def score(
    values: Sequence[float],
    forecasts: Mapping[int, Steps],
    horizons: Sequence[int] = (1, 12),
    start: int = 11,
    flags: Sequence[bool] | None = None,
    truth: Sequence[bool] | None = None,
) -> Scores:
    """Score ``forecasts`` (origin index -> steps) against ``values``.

    Origins before ``start`` are skipped (``start=11``: the first scored forecast is made
    after 12 points, as in River's evaluation). With ``flags`` (the system's per-point
    anomaly flags) and ``truth`` (the injected anomalies), also precision and recall, over
    points from ``start`` on.
    """
    out = Scores(points=len(values))
    for h in horizons:
        err, inside = [], []
        for origin, steps in forecasts.items():
            target = origin + h
            if origin < start or target >= len(values) or len(steps) < h:
                continue
            lo, v, hi = steps[h - 1]
            err.append(abs(v - values[target]))
            inside.append(lo <= values[target] <= hi)
        if err:
            out.mae[h] = float(np.mean(err))
            out.coverage[h] = float(np.mean(inside))
            out.scored[h] = len(err)
    if flags is not None and truth is not None:
        f = np.asarray(flags[start:], dtype=bool)
        t = np.asarray(truth[start:], dtype=bool)
        out.flagged = int(f.sum())
        out.precision = float((f & t).sum() / f.sum()) if f.any() else None
        out.recall = float((f & t).sum() / t.sum()) if t.any() else None
    return out


def evaluate_online(
    timestamps: Sequence[float],
    values: Sequence[float],
    config: ForecastConfig,
    period: int | None = None,
    truth: Sequence[bool] | None = None,
    horizons: Sequence[int] = (1, 12),
    start: int = 11,
) -> Scores:
    """Run a :class:`SeriesForecaster` over a series in-process and score it."""
    f = SeriesForecaster("eval", config, period)
    forecasts: dict[int, Steps] = {}
    flags = []
    for i, (ts, y) in enumerate(zip(timestamps, values, strict=True)):
        up = f.update(ts, y)
        flags.append(bool(up and up.anomaly))
        if up is not None and up.steps:
            forecasts[i] = [(s.lower, s.value, s.upper) for s in up.steps]
    return score(values, forecasts, horizons, start, flags if truth is not None else None, truth)
