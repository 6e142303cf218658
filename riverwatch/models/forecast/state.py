"""A series' forecaster state as bytes: what the forecasting role snapshots to Redis.

The bytes are a pickle of ``{"river", "format", "state"}``; a state written by another River
version or an unknown format is refused (the series starts afresh), and a format the current
one can carry on from is migrated (:func:`_migrate`). Pickles naming the modules' old places
load through :mod:`riverwatch.core.unpickle`.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import river

from riverwatch.core import unpickle
from riverwatch.core.errors import ModelError
from riverwatch.models.forecast.series import SeriesForecaster

STATE_FORMAT = 4


def dump_state(state: SeriesForecaster) -> bytes:
    """Pickle a series' state with the River version and state format it was built with."""
    return pickle.dumps(
        {"river": river.__version__, "format": STATE_FORMAT, "state": state},
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def load_state(blob: bytes) -> SeriesForecaster:
    """Unpickle a series' state; refuse another River version or state format (ModelError)."""
    try:
        data = unpickle.loads(blob)
    except Exception as exc:
        raise ModelError(f"forecaster state is unreadable: {exc}") from exc
    fmt = data.get("format")
    if data.get("river") != river.__version__ or fmt not in (STATE_FORMAT, *_MIGRATES):
        raise ModelError(
            f"forecaster state was written with river {data.get('river')} (format "
            f"{data.get('format')}); this process runs river {river.__version__} (format "
            f"{STATE_FORMAT}): the series starts afresh"
        )
    state: SeriesForecaster = data["state"]
    return state if fmt == STATE_FORMAT else _migrate(state)


_MIGRATES = (3,)  # earlier formats the current one can carry on from


def _migrate(old: SeriesForecaster) -> SeriesForecaster:
    """A format-3 state carried on: its calendar, trained candidates, counters, level shifts
    and anomaly residuals are kept; what format 4 scores differently (rolling errors per
    scored step, the combination, the interval windows) starts afresh, as in a new series'
    warm-up, so its first forecasts are served in priority order and filled intervals.
    Format 3 held a horizon x horizon ring per candidate: the reason snapshots were 0.6 MB."""
    was = vars(old)
    new = SeriesForecaster(old.series_id, dataclasses.replace(old.config), old.period)
    for key in (
        "buffer", "calendar", "candidates", "n", "last_ts", "last_value", "late",
        "anomalies", "alerts", "run", "shift", "offset", "last_alert", "scale",
        "one_step_mae", "steps",
    ):  # fmt: skip
        setattr(new, key, was[key])
    resid = np.asarray(was["resid1"], dtype=np.float32)
    new.resid1[: len(resid)] = resid[: len(new.resid1)]
    if new.calendar is not None:
        new._start_rows()
        served: Any = was["served"]  # format 3's _Served: per origin and step, source and band
        last = (old.n - 1) % old.config.horizon
        new.source = np.asarray(served.source[last], dtype=np.int16)
        new.band = float(served.band[last])
    return new
