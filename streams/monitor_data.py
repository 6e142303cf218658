"""Small helpers of the monitor: policy thresholds from settings, rows -> frames/arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from core.settings import Settings
from models.features import FEATURE_NAMES
from monitors.policy import PolicyConfig


def policy_config(s: Settings) -> PolicyConfig:
    """The policy thresholds the settings describe."""
    return PolicyConfig(
        drift_share_warn=s.monitor_drift_share,
        drift_share_critical=min(1.0, 2 * s.monitor_drift_share),
        perf_drop=s.monitor_perf_drop,
        rollback_margin=s.monitor_rollback_margin,
        cooldown_s=s.monitor_cooldown_s,
    )


def feature_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The feature matrix of stored rows, one column per feature."""
    return pd.DataFrame([r["x"] for r in rows], columns=list(FEATURE_NAMES), dtype=float)


def score_array(rows: Iterable[dict[str, Any]]) -> np.ndarray:
    """The combined scores of stored rows (NaN where missing)."""
    return np.asarray([r.get("score", math.nan) for r in rows], dtype=float)
