"""The wider tuning set of the forecasting panel: quarterly and yearly series, none reported.

Session 7's four tuning series (``bench.forecast_panel.TUNE``) could not tell candidate rules
apart at +12 (README "Forecasting benchmark"), and the report-only misses are quarterly and
yearly. These series come from files statsmodels ships (nothing is downloaded) and are not
in the report-only set (``bench.forecast_panel.REPORT``), which stays as it was:

- ``macro.<column>``: the quarterly US macro columns the panel does not report (realcons,
  realgovt, realdpi, m1, pop, realint, infl; 1959-2009, 203 points). realint and infl are
  derived from tbilrate and cpi, which are reported: kin, not the same series.
- ``inflation.R``: the interest rate of ``interest_inflation`` (quarterly, 1972-1998), the
  partner of the reported ``inflation.Dp``.
- ``danish.<column>``: the five quarterly columns of ``danish_data`` (1974-1987, 55 points).
- ``fertility.<code>``: the fertility rate per country (yearly 1960-2011, 52 points): of the
  192 rows with no gap in those years, in the file's order, every 20th from the first
  (10 series; a fixed subset chosen before any run). 2012 and 2013 are empty in the file.

Not taken: ``strikes`` (strike durations, not a time series), ``copper`` (25 years) and
``grunfeld`` / ``longley`` (16-20 years): too short to score a step 12 ahead from
origins after 12 points.

``python -m bench.forecast_panel --wide`` runs the four tuning series and these (in-process)
and prints per horizon the geometric mean of MAE/naive over them, overall and per
frequency, which is what a change at the far steps may be chosen on.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

Series = tuple[list[float], list[float]]  # epoch timestamps, values
MACRO = ("realcons", "realgovt", "realdpi", "m1", "pop", "realint", "infl")
DANISH = ("lrm", "lry", "lpy", "ibo", "ide")
FERTILITY_YEARS = tuple(str(y) for y in range(1960, 2012))
FERTILITY_EVERY = 20


def _epoch(year: int, month: int = 1) -> float:
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def _quarterly(frame: object, column: str) -> Series:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    ts = [
        _epoch(int(y), 3 * int(q) - 2) for y, q in zip(frame["year"], frame["quarter"], strict=True)
    ]
    return ts, frame[column].astype(float).tolist()


def macro(column: str) -> Series:
    """A quarterly column of statsmodels' macrodata."""
    from statsmodels import datasets as sm

    return _quarterly(sm.macrodata.load_pandas().data, column)


def inflation(column: str) -> Series:
    """A quarterly column of statsmodels' interest_inflation."""
    from statsmodels import datasets as sm

    return _quarterly(sm.interest_inflation.load_pandas().data, column)


def danish(column: str) -> Series:
    """A quarterly column of statsmodels' danish_data."""
    from statsmodels import datasets as sm

    frame = sm.danish_data.load_pandas().data
    return [_epoch(d.year, d.month) for d in frame.index], frame[column].astype(float).tolist()


def _fertility_rows() -> object:
    from statsmodels import datasets as sm

    frame = sm.fertility.load_pandas().data
    return frame.dropna(subset=list(FERTILITY_YEARS)).iloc[::FERTILITY_EVERY]


def fertility_codes() -> list[str]:
    """The country codes of the fixed subset (see the module docstring)."""
    return [str(c) for c in _fertility_rows()["Country Code"]]  # type: ignore[index]


def fertility(code: str) -> Series:
    """One country's yearly fertility rate, 1960-2011."""
    rows = _fertility_rows()
    row = rows[rows["Country Code"] == code].iloc[0]  # type: ignore[index]
    return [_epoch(int(y)) for y in FERTILITY_YEARS], [float(row[y]) for y in FERTILITY_YEARS]


def wide() -> dict[str, tuple[str, Callable[[], Series], int]]:
    """name -> (package, loader, period the calendar detects), like bench.forecast_panel.PANEL."""
    out: dict[str, tuple[str, Callable[[], Series], int]] = {}
    for c in MACRO:
        out[f"macro.{c}"] = ("statsmodels", lambda c=c: macro(c), 4)  # type: ignore[misc]
    out["inflation.R"] = ("statsmodels", lambda: inflation("R"), 4)
    for c in DANISH:
        out[f"danish.{c}"] = ("statsmodels", lambda c=c: danish(c), 4)  # type: ignore[misc]
    for code in fertility_codes():
        out[f"fertility.{code}"] = ("statsmodels", lambda k=code: fertility(k), 1)  # type: ignore[misc]
    return out


def geomean(xs: list[float]) -> float:
    """Geometric mean (of ratios: MAE/naive)."""
    return math.exp(statistics.fmean(math.log(x) for x in xs))


def summary(rel: Mapping[str, Mapping[int, float]], horizons: tuple[int, ...]) -> list[str]:
    """Per horizon, the geometric mean of MAE/naive over all the series given and per group
    (the old four, quarterly, yearly), and the median."""
    old4 = ("airline", "waterflow", "elec_equip", "macro.realgdp")
    quarterly = ("macro", "inflation", "danish")
    groups = {
        "all": list(rel),
        "old4": [n for n in rel if n in old4],
        "quarterly": [n for n in rel if n.split(".")[0] in quarterly and n not in old4],
        "yearly": [n for n in rel if n.startswith("fertility.")],
    }
    out = []
    for h in horizons:
        parts = [
            f"{g} {geomean([rel[n][h] for n in names]):.4f}" for g, names in groups.items() if names
        ]
        med = statistics.median(rel[n][h] for n in rel)
        out.append(f"geomean MAE/naive +{h}: " + ", ".join(parts) + f"; median {med:.3f}")
    return out
