"""Small helpers of the monitor: policy thresholds from settings, rows -> frames/arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.core.errors import ConfigError
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_NAMES, FeatureSet, row_features
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.monitors.policy.config import PolicyConfig


def policy_config(s: Settings) -> PolicyConfig:
    """The policy thresholds the settings describe."""
    return PolicyConfig(
        drift_share_warn=s.monitor_drift_share,
        drift_share_critical=(1.0 + s.monitor_drift_share) / 2,
        drift_windows=s.monitor_drift_windows,
        perf_drop=s.monitor_perf_drop,
        perf_windows=s.monitor_perf_windows,
        rollback_margin=s.monitor_rollback_margin,
        cooldown_s=s.monitor_cooldown_s,
        estimate_min_abs=s.monitor_estimate_min_abs,
        estimate_min_rel=s.monitor_estimate_min_rel,
        estimate_min_count=s.monitor_estimate_min_count,
        fairness_min_ratio=s.monitor_fairness_min_ratio,
        fairness_tolerance=s.monitor_fairness_tolerance,
        fairness_odds_tolerance=s.monitor_fairness_odds_tolerance,
    )


def core_config(s: Settings, weights: dict[str, float] | None = None) -> CoreConfig:
    """The monitor core's configuration the settings describe (``weights``: the champion's
    feature importance, if known)."""
    day = 86_400.0
    return CoreConfig(
        features=FeatureSet.parse(s.feature_attributes).names,
        drift_columns=tuple(drift_columns(s)),
        review_threshold=s.review_threshold,
        label_delay_s=s.label_delay_s,
        window_s=s.monitor_window_s,
        window_size=s.monitor_window_size,
        label_window=s.monitor_label_window,
        warmup_s=s.monitor_warmup_days * day,
        reference_s=s.monitor_reference_days * day,
        reference_rows=max(s.monitor_reference_rows, 1000),
        drift_min_psi=s.monitor_drift_min_psi,
        fairness_confidence=s.monitor_fairness_confidence,
        fairness_tolerance=s.monitor_fairness_tolerance,
        perf_confidence=s.monitor_perf_confidence,
        max_group_values=s.monitor_max_group_values,
        weights=weights,
        policy=policy_config(s),
        quality=QualityConfig(
            min_abs=s.monitor_quality_min_abs,
            min_rel=s.monitor_quality_min_rel,
            min_count=s.monitor_quality_min_count,
            new_share=s.monitor_quality_new_share,
            max_values=s.monitor_max_group_values,
        ),
    )


def drift_columns(s: Settings) -> list[str]:
    """The features data drift is computed on: the model's columns (attributes included)
    but RIVERWATCH_MONITOR_DRIFT_EXCLUDE.

    >>> drift_columns(Settings(monitor_drift_exclude="hour, is_weekend"))[:3]
    ['amount', 'is_night', 'card_n_1d']
    >>> drift_columns(Settings(feature_attributes="risk"))[-1]
    'attr_risk'
    """
    names = FeatureSet.parse(s.feature_attributes).names
    skip = {c.strip() for c in s.monitor_drift_exclude.split(",") if c.strip()}
    if unknown := skip - set(names):
        raise ConfigError(
            f"RIVERWATCH_MONITOR_DRIFT_EXCLUDE names unknown features {sorted(unknown)}; "
            f"known: {', '.join(names)}"
        )
    if not (cols := [c for c in names if c not in skip]):
        raise ConfigError("RIVERWATCH_MONITOR_DRIFT_EXCLUDE leaves no feature to watch")
    return cols


def feature_frame(
    rows: Iterable[dict[str, Any]], names: Sequence[str] = FEATURE_NAMES
) -> pd.DataFrame:
    """The feature matrix of stored rows, one column per name in ``names``.

    Rows with attribute columns are read by their own names (``models.features.row_features``),
    so rows stored under another RIVERWATCH_FEATURE_ATTRIBUTES fit; a column a row lacks is NaN.

    >>> row = {"x": [1.0] * len(FEATURE_NAMES) + [5.0], "attrs": ["risk"]}
    >>> feature_frame([row], ["amount", "attr_risk", "attr_other"]).values.tolist()
    [[1.0, 5.0, nan]]
    """
    rows = list(rows)
    if any(r.get("attrs") for r in rows):
        df = pd.DataFrame([row_features(r) for r in rows], dtype=float)
    else:  # the common case, and the fast one: every row has the built-in columns only
        df = pd.DataFrame([r["x"] for r in rows], columns=list(FEATURE_NAMES), dtype=float)
    return df if list(df.columns) == list(names) else df.reindex(columns=list(names))


def score_array(rows: Iterable[dict[str, Any]]) -> np.ndarray:
    """The combined scores of stored rows (NaN where missing)."""
    return np.asarray([r.get("score", math.nan) for r in rows], dtype=float)
