"""The thresholds of data quality (:mod:`monitors.dataquality`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds (the worker builds them from RIVERWATCH_MONITOR_QUALITY_* settings)."""

    min_abs: float = 0.02  # least absolute rise of a rate
    min_rel: float = 1.0  # least rise relative to the reference rate (1.0: doubled)
    min_count: int = 20  # least affected events in the window
    # least share of a window a new value must reach: none by default, as Evidently's value-list
    # test and NannyML's unseen-values calculator, which flag one unseen value; min_count
    # events of it make a finding, so a stray value does not
    new_share: float = 0.0
    z: float = 4.0  # one-sided z against the reference rate
    max_values: int = 256  # values per categorical field in the reference (more: not judged)
    max_fields: int = 64  # groups attributes tracked
    min_rows: int = 100  # least reference rows (and rows carrying row_quality) to judge
