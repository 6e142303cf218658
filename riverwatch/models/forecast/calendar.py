"""A series' calendar: its step, its seasonal period and the cycles behind it.

The period is what seasonal forecasters need (HoltWinters' ``seasonality``, SNARIMAX's ``m``);
the cycles (day, week, year, in seconds) feed the Fourier features of the calendar
regression. Both come from the series' step unless the period is configured:

>>> detect([0, 60, 120, 180]).period          # minutes: one day is 1440 points
1440
>>> from datetime import datetime, UTC
>>> months = [datetime(1949, m, 1, tzinfo=UTC).timestamp() for m in (1, 2, 3, 4)]
>>> cal = detect(months)
>>> cal.period, cal.monthly
(12, True)
>>> datetime.fromtimestamp(cal.future(months[-1], 2)[-1], UTC).date()
datetime.date(1949, 6, 1)
>>> round(fourier(cal, months[0])["trend"], 6), len(fourier(cal, months[0]))
(0.0, 12)
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

DAY = 86_400.0
WEEK = 7 * DAY
YEAR = 365.2425 * DAY
_MONDAY = 4 * DAY  # 1970-01-05 was a Monday: weekly phases start there
MAX_HARMONICS = 6


@dataclass(frozen=True)
class Calendar:
    """How a series advances in time and which seasonal cycles it may have.

    ``period`` is the number of points per season (1: no seasonality); ``cycles`` are the
    calendar cycles, in seconds, that the calendar features describe; ``origin`` is the first
    timestamp (the trend feature counts cycles since then).
    """

    step_s: float
    period: int
    cycles: tuple[float, ...]
    origin: float
    monthly: bool = False

    def future(self, last: float, horizon: int) -> list[float]:
        """The ``horizon`` timestamps after ``last`` (whole calendar months for monthly series)."""
        if not self.monthly:
            return [last + h * self.step_s for h in range(1, horizon + 1)]
        start = datetime.fromtimestamp(last, UTC)
        out = []
        for h in range(1, horizon + 1):
            month = start.month - 1 + h
            year, month = start.year + month // 12, month % 12 + 1
            out.append(start.replace(year=year, month=month, day=min(start.day, 28)).timestamp())
        return out


def detect(timestamps: list[float], period: int | None = None, max_period: int = 1440) -> Calendar:
    """The calendar of a series from its first timestamps (at least two, increasing).

    The step is the median spacing. The seasonal cycle is the shortest of day, week and year
    that spans at least two steps (a monthly or weekly series uses the year); a cycle longer
    than ``max_period`` steps gives ``period == 1`` (not seasonal), though the calendar
    features still describe it. A configured ``period`` wins over detection.
    """
    if len(timestamps) < 2:
        raise ValueError("detecting a calendar needs at least two timestamps")
    step = statistics.median(b - a for a, b in itertools.pairwise(timestamps))
    if step <= 0:
        raise ValueError("timestamps must increase")
    origin = timestamps[0]
    monthly = 27 * DAY <= step <= 32 * DAY
    if period is not None:
        if period <= 1:
            return Calendar(step, 1, (), origin, monthly)
        # Snap to the calendar cycle it means: 12 months of 28-31 days are one year.
        cycle = next((c for c in (DAY, WEEK, YEAR) if abs(period * step / c - 1) < 0.05), None)
        return Calendar(step, period, (cycle or period * step,), origin, monthly)
    if monthly or 6 * DAY <= step <= 8 * DAY:
        points = 12 if monthly else round(YEAR / step)
        return Calendar(step, points if points <= max_period else 1, (YEAR,), origin, monthly)
    cycles = tuple(c for c in (DAY, WEEK, YEAR) if c / step >= 2)[:2]
    if not cycles:
        return Calendar(step, 1, (), origin)
    points = round(cycles[0] / step)
    return Calendar(step, points if points <= max_period else 1, cycles, origin)


def _phase(cycle: float, ts: float) -> float:
    if cycle == YEAR:
        d = datetime.fromtimestamp(ts, UTC)
        start = datetime(d.year, 1, 1, tzinfo=UTC).timestamp()
        end = datetime(d.year + 1, 1, 1, tzinfo=UTC).timestamp()
        return (ts - start) / (end - start)
    anchor = _MONDAY if cycle == WEEK else 0.0
    return ((ts - anchor) % cycle) / cycle


def fourier(cal: Calendar, ts: float) -> dict[str, float]:
    """Calendar features of ``ts``: a bias, a trend (cycles since the origin), Fourier terms.

    The first cycle gets up to six harmonics, a second one up to three, never more than the
    cycle's points allow (a cycle of n points resolves n/2 harmonics).
    """
    x = {"bias": 1.0, "trend": (ts - cal.origin) / (cal.cycles[0] if cal.cycles else cal.step_s)}
    for i, cycle in enumerate(cal.cycles):
        phase = 2 * math.pi * _phase(cycle, ts)
        top = MAX_HARMONICS if i == 0 else MAX_HARMONICS // 2
        for k in range(1, min(top, int(cycle / cal.step_s) // 2) + 1):
            x[f"s{i}_{k}"] = math.sin(k * phase)
            x[f"c{i}_{k}"] = math.cos(k * phase)
    return x
