"""The monitor's parts the composition root (riverwatch/context.py) builds from Settings: the
policy's thresholds, the concept-drift monitor and the monitor core's configuration.

They are the largest group of settings one role reads (``RIVERWATCH_MONITOR_*``), so they sit
in their own module beside riverwatch/context_parts.py, on the same floor: below the
shell only these modules read the Settings (``make lint``). Each builder takes what it needs
and imports the monitor's modules only when called, so a process without the monitor role
never loads them.

>>> policy_config(Settings(monitor_drift_share=0.4)).drift_share_critical
0.7
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riverwatch.core.settings import Settings

if TYPE_CHECKING:  # imported where built, as in context.py
    from riverwatch.monitors.concept import ConceptDriftMonitor
    from riverwatch.monitors.core.config import CoreConfig
    from riverwatch.monitors.policy.config import PolicyConfig

DAY_S = 86_400.0


def warmup_days(s: Settings) -> float:
    """Event days of the monitor's warm-up: RIVERWATCH_MONITOR_WARMUP_DAYS, or until every
    feature window can be full (:attr:`FeatureSpec.full_days`, 37 days at the defaults)."""
    if s.monitor_warmup_days is not None:
        return s.monitor_warmup_days
    from riverwatch.models.features import FeatureSpec

    return FeatureSpec(s.feature_bucket_s, s.label_delay_days).full_days


def policy_config(s: Settings) -> PolicyConfig:
    """The monitoring policy's thresholds."""
    from riverwatch.monitors.policy.config import PolicyConfig

    return PolicyConfig(
        drift_share_warn=s.monitor_drift_share,
        drift_share_critical=(1.0 + s.monitor_drift_share) / 2,
        drift_windows=s.monitor_drift_windows,
        perf_drop=s.monitor_perf_drop,
        perf_windows=s.monitor_perf_windows,
        rollback_margin=s.monitor_rollback_margin,
        cooldown_s=s.monitor_cooldown_s,
        # the label delay plus the trainer's hold-out: the follow-up's training window
        # then reaches the concept-drift detection that asked for the first retrain
        followup_s=s.label_delay_s + s.holdout_days * DAY_S,
        estimate_min_abs=s.monitor_estimate_min_abs,
        estimate_min_rel=s.monitor_estimate_min_rel,
        estimate_min_count=s.monitor_estimate_min_count,
        label_shift_min_abs=s.monitor_label_shift_min_abs,
        label_shift_min_rel=s.monitor_label_shift_min_rel,
        label_shift_min_labels=s.monitor_label_shift_min_labels,
        label_shift_alpha=s.monitor_label_shift_alpha,
        label_shift_windows=s.monitor_label_shift_windows,
        fairness_min_ratio=s.monitor_fairness_min_ratio,
        fairness_tolerance=s.monitor_fairness_tolerance,
        fairness_odds_tolerance=s.monitor_fairness_odds_tolerance,
    )


def concept_monitor(s: Settings) -> ConceptDriftMonitor:
    """A new concept-drift monitor over the models' error streams (stateful: one per
    monitor, built when it starts)."""
    from riverwatch.monitors.concept import ConceptDriftMonitor
    from riverwatch.monitors.concept.detectors import make_detector

    return ConceptDriftMonitor(
        make_detector(s.monitor_detector),
        min_abs=s.monitor_concept_min_abs,
        min_rel=s.monitor_concept_min_rel,
        min_count=s.monitor_concept_min_labels,
        alpha=s.monitor_concept_alpha,
        max_groups=s.monitor_max_group_values,
    )


def core_config(
    s: Settings,
    features: tuple[str, ...],
    drift_columns: tuple[str, ...],
    policy: PolicyConfig,
    weights: dict[str, float] | None = None,
) -> CoreConfig:
    """The monitor core's configuration (``weights``: the champion's feature importance,
    if known)."""
    from riverwatch.monitors.core.config import CoreConfig
    from riverwatch.monitors.dataquality.config import QualityConfig

    return CoreConfig(
        features=features,
        drift_columns=drift_columns,
        review_threshold=s.review_threshold,
        label_delay_s=s.label_delay_s,
        window_s=s.monitor_window_s,
        window_size=s.monitor_window_size,
        window_rows=s.monitor_window_rows,
        sources=s.partitions,
        label_window=s.monitor_label_window,
        warmup_s=warmup_days(s) * DAY_S,
        reference_s=s.monitor_reference_days * DAY_S,
        reference_rows=max(s.monitor_reference_rows, 1000),
        drift_min_psi=s.monitor_drift_min_psi,
        fairness_confidence=s.monitor_fairness_confidence,
        fairness_tolerance=s.monitor_fairness_tolerance,
        perf_confidence=s.monitor_perf_confidence,
        max_group_values=s.monitor_max_group_values,
        weights=weights,
        policy=policy,
        quality=QualityConfig(
            min_abs=s.monitor_quality_min_abs,
            min_rel=s.monitor_quality_min_rel,
            min_count=s.monitor_quality_min_count,
            new_share=s.monitor_quality_new_share,
            max_values=s.monitor_max_group_values,
        ),
    )
