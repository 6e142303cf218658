"""The monitor's windows, reference and thresholds (drift, performance, fairness, concept
drift, label shift, data quality)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from riverwatch.core.settings.types import comma_list


class MonitorSettings(BaseModel):
    """Every RIVERWATCH_MONITOR_* knob."""

    monitor_window_size: int = Field(
        2000,
        ge=0,
        description="RIVERWATCH_MONITOR_WINDOW_SIZE: scored events per count window "
        "(0: no count windows).",
    )
    monitor_window_s: float = Field(
        86_400.0,
        ge=0,
        description="RIVERWATCH_MONITOR_WINDOW_S: event-time width of time windows "
        "(0: no time windows).",
    )
    monitor_window_rows: int = Field(
        50_000,
        ge=0,
        description="RIVERWATCH_MONITOR_WINDOW_ROWS: scored rows a time window keeps, a uniform "
        "sample beyond (its counts, volumes and data-quality tallies stay exact; 0: all).",
    )
    monitor_label_window: int = Field(
        2000,
        ge=10,
        description="RIVERWATCH_MONITOR_LABEL_WINDOW: labeled events per window "
        "(fairness and performance).",
    )
    monitor_reference_rows: int = Field(
        5000, ge=100, description="RIVERWATCH_MONITOR_REFERENCE_ROWS: reference sample size."
    )
    monitor_history: int = Field(
        100, ge=1, description="RIVERWATCH_MONITOR_HISTORY: results kept per kind in Redis."
    )
    monitor_drift_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="RIVERWATCH_MONITOR_DRIFT_SHARE: share of drifted features "
        "that warns (halfway from it to 1 is critical).",
    )
    monitor_drift_windows: int = Field(
        2,
        ge=1,
        description="RIVERWATCH_MONITOR_DRIFT_WINDOWS: consecutive windows over the share "
        "before a data-drift alert (one window alone drifts by chance too often).",
    )
    monitor_drift_exclude: Annotated[tuple[str, ...], NoDecode] = Field(
        ("hour", "is_weekend", "is_night"),
        description="RIVERWATCH_MONITOR_DRIFT_EXCLUDE: features left out of data drift "
        "(comma-separated). The calendar features are by default: a window shorter than a "
        "week covers other hours and days than the reference, so they 'drift' by the clock.",
    )
    monitor_perf_drop: float = Field(
        0.1, gt=0, description="RIVERWATCH_MONITOR_PERF_DROP: AP drop below baseline -> retrain."
    )
    monitor_perf_windows: int = Field(
        2,
        ge=1,
        description="RIVERWATCH_MONITOR_PERF_WINDOWS: matured label windows in a row whose AP "
        "is below the baseline minus RIVERWATCH_MONITOR_PERF_DROP before a performance alert "
        "and a retrain (one window alone drops by chance every few weeks).",
    )
    monitor_perf_confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="RIVERWATCH_MONITOR_PERF_CONFIDENCE: a window's AP counts as dropped "
        "(retrain) or worse than the predecessor's (rollback) only when its bootstrap upper "
        "bound at this level is too (a window's few frauds make its AP noisy).",
    )
    monitor_estimate_min_abs: float = Field(
        0.1,
        ge=0,
        description="RIVERWATCH_MONITOR_ESTIMATE_MIN_ABS: least drop of a precision or recall "
        "estimated from the scores (before labels, CBPE) below the reference's estimate: the "
        "window's whole interval must be below by this much (and by MIN_REL).",
    )
    monitor_estimate_min_rel: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="RIVERWATCH_MONITOR_ESTIMATE_MIN_REL: ... and by this share of the "
        "reference's estimate (0.2: a fifth).",
    )
    monitor_estimate_min_count: int = Field(
        30,
        ge=1,
        description="RIVERWATCH_MONITOR_ESTIMATE_MIN_COUNT: events a window and the reference "
        "need behind an estimated metric (flagged events for precision, expected frauds for "
        "recall) before it is judged.",
    )
    monitor_rollback_margin: float = Field(
        0.02,
        ge=0,
        description="RIVERWATCH_MONITOR_ROLLBACK_MARGIN: AP a new champion may lose "
        "against its predecessor before a rollback.",
    )
    monitor_cooldown_s: float = Field(
        6 * 3600.0,
        ge=0,
        description="RIVERWATCH_MONITOR_COOLDOWN_S: event-time seconds between "
        "two monitor alerts or actions on one subject.",
    )
    monitor_fairness_confidence: float = Field(
        0.99, gt=0, lt=1, description="RIVERWATCH_MONITOR_FAIRNESS_CONFIDENCE: bootstrap level."
    )
    monitor_fairness_tolerance: float = Field(
        0.02, ge=0, description="RIVERWATCH_MONITOR_FAIRNESS_TOLERANCE: gap an interval must clear."
    )
    monitor_fairness_min_ratio: float = Field(
        0.8,
        gt=0,
        le=1,
        description="RIVERWATCH_MONITOR_FAIRNESS_MIN_RATIO: a selection-rate (demographic "
        "parity) or TPR/FPR (equalized odds) ratio between groups whose whole interval is below "
        "this is unfair (fairlearn's convention, the four-fifths rule).",
    )
    monitor_fairness_odds_tolerance: float = Field(
        0.02,
        ge=0,
        description="RIVERWATCH_MONITOR_FAIRNESS_ODDS_TOLERANCE: a TPR or FPR difference "
        "between groups (equalized odds) whose whole interval is above this is unfair "
        "(RIVERWATCH_MONITOR_FAIRNESS_TOLERANCE is the selection rate's).",
    )
    monitor_max_group_values: int = Field(
        256,
        ge=1,
        le=100_000,
        description="RIVERWATCH_MONITOR_MAX_GROUP_VALUES: values of one protected attribute "
        "that fairness (per window) and concept drift (per model) track apart, the most "
        "frequent; the others share the group '(other)' (riverwatch_group_values_pooled_total "
        "counts them).",
    )
    monitor_detector: Literal["adwin", "page_hinkley"] = Field(
        "adwin", description="RIVERWATCH_MONITOR_DETECTOR: concept-drift detector on errors."
    )
    monitor_concept_min_abs: float = Field(
        0.005,
        ge=0,
        description="RIVERWATCH_MONITOR_CONCEPT_MIN_ABS: least absolute rise of an error rate "
        "that counts as concept drift (0.003 -> 0.004 is not one).",
    )
    monitor_concept_min_rel: float = Field(
        0.5,
        ge=0,
        description="RIVERWATCH_MONITOR_CONCEPT_MIN_REL: least rise relative to the error rate "
        "before (0.5: by half) that counts as concept drift.",
    )
    monitor_concept_min_labels: int = Field(
        1000,
        ge=0,
        description="RIVERWATCH_MONITOR_CONCEPT_MIN_LABELS: labels a (model, group) error "
        "stream needs before a detected rise counts.",
    )
    monitor_concept_alpha: float = Field(
        0.001,
        ge=0,
        lt=1,
        description="RIVERWATCH_MONITOR_CONCEPT_ALPHA: a material rise of an error rate must "
        "also be significant at this level (exact one-sided test of two Poisson rates, the "
        "confirmation window against the stretch before it; 0: no test).",
    )

    monitor_label_shift_min_abs: float = Field(
        0.001,
        ge=0,
        description="RIVERWATCH_MONITOR_LABEL_SHIFT_MIN_ABS: least absolute rise of the fraud "
        "rate among a window's matured labels over the reference's that counts as a label "
        "shift (a `drift` alert on subject `labels`).",
    )
    monitor_label_shift_min_rel: float = Field(
        0.5,
        ge=0,
        description="RIVERWATCH_MONITOR_LABEL_SHIFT_MIN_REL: least rise of that fraud rate "
        "relative to the reference's (0.5: by half) that counts as a label shift.",
    )
    monitor_label_shift_min_labels: int = Field(
        1000,
        ge=1,
        description="RIVERWATCH_MONITOR_LABEL_SHIFT_MIN_LABELS: labels a window (of "
        "RIVERWATCH_MONITOR_WINDOW_S event time, by the labelled events' time) and the "
        "reference need before the label shift is judged.",
    )
    monitor_label_shift_alpha: float = Field(
        0.001,
        ge=0,
        lt=1,
        description="RIVERWATCH_MONITOR_LABEL_SHIFT_ALPHA: a material rise of the fraud rate "
        "among labels must also be significant at this level (the exact one-sided test of two "
        "Poisson rates, as for concept drift; 0: no test).",
    )
    monitor_label_shift_windows: int = Field(
        2,
        ge=1,
        description="RIVERWATCH_MONITOR_LABEL_SHIFT_WINDOWS: consecutive matured windows with "
        "such a rise before a label-shift alert (as RIVERWATCH_MONITOR_DRIFT_WINDOWS).",
    )

    monitor_warmup_days: float | None = Field(
        None,
        ge=0,
        description="RIVERWATCH_MONITOR_WARMUP_DAYS: event days after the first event before "
        "the monitor's reference starts; nothing is judged before. Unset: until every "
        "feature window can be full, the longest (30 days) plus the label delay, since the "
        "terminals' windows end a label delay back (37 days at the defaults).",
    )
    monitor_reference_days: float = Field(
        7.0,
        gt=0,
        description="RIVERWATCH_MONITOR_REFERENCE_DAYS: event days the reference covers once "
        "warm (and after POST /v1/monitor/reference, a reset or a promotion without rows).",
    )
    monitor_snapshot_s: float = Field(
        5.0,
        gt=0,
        description="RIVERWATCH_MONITOR_SNAPSHOT_S: wall seconds at least between snapshots "
        "of the monitor's windows, reference and concept-drift detectors in Redis (a crash "
        "loses the records since the last one; a clean stop loses none).",
    )
    monitor_drift_min_psi: float = Field(
        0.1,
        ge=0,
        description="RIVERWATCH_MONITOR_DRIFT_MIN_PSI: least PSI (effect size) for a feature "
        "to drift, overall or in a segment, besides its chi-square test.",
    )
    monitor_quality_min_abs: float = Field(
        0.02,
        gt=0,
        le=1,
        description="RIVERWATCH_MONITOR_QUALITY_MIN_ABS: least absolute rise of a field's "
        "missing, invalid or out-of-range rate over the reference's for a quality alert.",
    )
    monitor_quality_min_rel: float = Field(
        1.0,
        ge=0,
        description="RIVERWATCH_MONITOR_QUALITY_MIN_REL: least rise of such a rate relative to "
        "the reference's (1.0: doubled).",
    )
    monitor_quality_min_count: int = Field(
        20,
        ge=1,
        description="RIVERWATCH_MONITOR_QUALITY_MIN_COUNT: least events of a window affected "
        "(a bad field, or a new value of a categorical field) for a quality alert.",
    )
    monitor_quality_new_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="RIVERWATCH_MONITOR_QUALITY_NEW_SHARE: least share of a window's events "
        "a value not seen in the reference must reach for a quality alert (new category); 0: "
        "any share, once RIVERWATCH_MONITOR_QUALITY_MIN_COUNT events carry it.",
    )

    @field_validator("monitor_drift_exclude", mode="before")
    @classmethod
    def _exclude(cls, value: Any) -> Any:
        return comma_list(value)
