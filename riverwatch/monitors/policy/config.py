"""The thresholds of the monitoring policy (:mod:`monitors.policy`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy (the worker builds them from RIVERWATCH_MONITOR_* settings)."""

    drift_share_warn: float = 0.5  # share of drifted features that warns (Evidently's default)
    drift_share_critical: float = 0.75  # ... and that is critical
    # Consecutive windows (of one kind) over the share before a data-drift alert: a single
    # window (a day, a few thousand events) differs from the reference by chance more often
    # than a per-feature test's threshold suggests; a real shift persists.
    drift_windows: int = 2
    perf_metric: str = "ap"  # the metric whose drop requests a retrain
    perf_drop: float = 0.1  # absolute drop below the baseline that counts as a drop
    baseline_windows: int = 3  # healthy matured windows averaged into the baseline
    # Matured windows in a row below the limit before a performance drop is acted on. Each
    # window's bound is a test at 1 - ``perf_confidence`` (5 %), asked ~1.5 times a day per
    # model: one window alone is a false drop every few weeks of a calm stream (the scenario
    # benchmark's no-change runs: 3 of 6), as with ``drift_windows`` a real drop persists.
    perf_windows: int = 2
    rollback_margin: float = 0.02  # a new champion this much worse than its predecessor
    cooldown_s: float = 6 * 3600.0  # event-time seconds between two alerts of one subject
    # Event time after a concept-drift retrain at which a second one is requested (0: never).
    # A retrain can only train on labels matured by its request, which are mostly from before
    # the change its detection reacted to; once the labels since then have matured (the label
    # delay plus the trainer's hold-out), the follow-up's challenger has seen the new concept.
    followup_s: float = 0.0
    retrain_models: tuple[str, ...] = ("batch", "combined")
    reset_models: tuple[str, ...] = ("online",)
    batch_model: str = "batch"  # the model the registry's champion serves
    audit_max: int = 1000
    # performance estimated before labels (monitors.estimated): a drop counts when the
    # estimate's interval lies below the reference's estimate by max(min_abs, min_rel * it),
    # with at least min_count events behind the metric (flagged, or expected frauds)
    estimate_min_abs: float = 0.1
    estimate_min_rel: float = 0.2
    estimate_min_count: int = 30
    # label shift (monitors.labelshift): a matured window's fraud rate among labels above the
    # reference's by max(min_abs, min_rel * it), both on min_labels+ labels, significant at
    # alpha (the exact one-sided test of two Poisson rates), ``label_shift_windows`` in a row
    label_shift_min_abs: float = 0.001
    label_shift_min_rel: float = 0.5
    label_shift_min_labels: int = 1000
    label_shift_alpha: float = 0.001
    label_shift_windows: int = 2
    # fairness (monitors.fairness.rules), after fairlearn's conventions
    fairness_min_ratio: float = 0.8  # parity / equalized-odds ratio (the four-fifths rule)
    fairness_tolerance: float = 0.02  # selection-rate difference
    fairness_odds_tolerance: float = 0.02  # TPR / FPR difference (equalized odds)
