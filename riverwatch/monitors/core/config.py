"""What the monitor's core is configured with, and the names it shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.monitors.policy.config import PolicyConfig

DAY = 86_400.0
MODELS = (("combined", "score"), ("online", "online_score"), ("batch", "batch_score"))
Row = dict[str, Any]
Store = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class CoreConfig:
    """What the core needs to know; ``riverwatch.context.Context.monitor_core`` builds it."""

    features: tuple[str, ...]
    drift_columns: tuple[str, ...]
    review_threshold: float = 0.5
    label_delay_s: float = 7 * DAY
    window_s: float = DAY
    window_size: int = 0
    # rows a time window keeps (a uniform sample beyond; its counts stay exact), 0: all
    window_rows: int = 50_000
    # the ``transactions`` partitions a time window waits for (monitors.windows), 0: those seen
    sources: int = 0
    label_window: int = 2000
    warmup_s: float = 30 * DAY  # the longest feature window
    reference_s: float = 7 * DAY  # event time the reference covers (a week: every weekday)
    reference_rows: int = 20_000
    min_reference_rows: int = 200
    drift_min_psi: float = 0.1
    drift_alpha: float = 0.01
    segment_min_rows: int = 300
    fairness_confidence: float = 0.99
    fairness_tolerance: float = 0.02
    perf_confidence: float = 0.95
    max_group_values: int = 256  # values of an attribute tracked apart; the rest as "(other)"
    weights: dict[str, float] | None = None  # the champion's feature importance
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)  # monitors.dataquality


def default_frame(rows: Sequence[Row], names: Sequence[str]) -> pd.DataFrame:
    """Feature matrix of rows whose ``x`` holds exactly ``names``."""
    return pd.DataFrame([r["x"] for r in rows], columns=list(names), dtype=float)
