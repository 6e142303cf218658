"""Small helpers of the monitor: policy thresholds from settings, rows -> frames/arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.settings import Settings
from models.features import FEATURE_NAMES
from monitors.policy import PolicyConfig


def policy_config(s: Settings) -> PolicyConfig:
    """The policy thresholds the settings describe."""
    return PolicyConfig(
        drift_share_warn=s.monitor_drift_share,
        drift_share_critical=(1.0 + s.monitor_drift_share) / 2,
        drift_windows=s.monitor_drift_windows,
        perf_drop=s.monitor_perf_drop,
        rollback_margin=s.monitor_rollback_margin,
        cooldown_s=s.monitor_cooldown_s,
    )


def drift_columns(s: Settings) -> list[str]:
    """The features data drift is computed on: all but RIVERWATCH_MONITOR_DRIFT_EXCLUDE.

    >>> drift_columns(Settings(monitor_drift_exclude="hour, is_weekend"))[:3]
    ['amount', 'is_night', 'card_n_1d']
    """
    skip = {c.strip() for c in s.monitor_drift_exclude.split(",") if c.strip()}
    if unknown := skip - set(FEATURE_NAMES):
        raise ConfigError(
            f"RIVERWATCH_MONITOR_DRIFT_EXCLUDE names unknown features {sorted(unknown)}; "
            f"known: {', '.join(FEATURE_NAMES)}"
        )
    if not (cols := [c for c in FEATURE_NAMES if c not in skip]):
        raise ConfigError("RIVERWATCH_MONITOR_DRIFT_EXCLUDE leaves no feature to watch")
    return cols


def feature_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The feature matrix of stored rows, one column per feature."""
    return pd.DataFrame([r["x"] for r in rows], columns=list(FEATURE_NAMES), dtype=float)


def score_array(rows: Iterable[dict[str, Any]]) -> np.ndarray:
    """The combined scores of stored rows (NaN where missing)."""
    return np.asarray([r.get("score", math.nan) for r in rows], dtype=float)
