"""The stream roles' knobs: scoring and learning, the worker process, forecasting, training."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from riverwatch.core.roles import Role
from riverwatch.core.settings.base import DAY_SECONDS
from riverwatch.core.settings.types import parse_attributes, parse_periods, parse_roles


class ScoringSettings(BaseModel):
    """Scoring, the feature store and the online learner."""

    score_batch_max: int = Field(
        1000, ge=1, description="RIVERWATCH_SCORE_BATCH_MAX: largest micro-batch the scorer takes."
    )
    score_batch_wait_ms: int = Field(
        5, ge=0, description="RIVERWATCH_SCORE_BATCH_WAIT_MS: longest wait to fill a micro-batch."
    )
    score_ttl_s: int = Field(
        3 * DAY_SECONDS,
        ge=1,
        description="RIVERWATCH_SCORE_TTL_S: how long GET /v1/scores keeps a score.",
    )
    label_delay_days: int = Field(
        7, ge=0, description="RIVERWATCH_LABEL_DELAY_DAYS: terminal risk counts only older labels."
    )
    label_horizon_s: int = Field(
        14 * DAY_SECONDS,
        ge=1,
        description="RIVERWATCH_LABEL_HORIZON_S: TTL of stored feature rows awaiting their label.",
    )
    feature_bucket_s: int = Field(
        3600,
        ge=60,
        description="RIVERWATCH_FEATURE_BUCKET_S: width of the per-entity time buckets.",
    )
    feature_attributes: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="RIVERWATCH_FEATURE_ATTRIBUTES: comma-separated names of numeric transaction "
        "`attributes` to use as extra model features (columns attr_<name>); a missing or "
        "non-numeric one scores as 0.0 and is counted in riverwatch_attribute_fills_total. "
        "Empty: the built-in features only.",
    )
    early_label_grace_s: float = Field(
        600.0,
        ge=0,
        description="RIVERWATCH_EARLY_LABEL_GRACE_S: a label that arrives before its transaction "
        "is scored (a replay, a scorer with a backlog) waits this long (wall time) for its "
        "feature row, retried about once a second, before it counts as unknown; 0: at once.",
    )
    early_labels_max: int = Field(
        20_000,
        ge=0,
        description="RIVERWATCH_EARLY_LABELS_MAX: at most this many labels wait for their "
        "transaction; beyond, one whose feature row is missing counts as unknown at once.",
    )
    snapshot_every_labels: int = Field(
        500, ge=1, description="RIVERWATCH_SNAPSHOT_EVERY_LABELS: online-model snapshot cadence."
    )
    snapshot_every_s: float = Field(
        2.0,
        gt=0,
        description="RIVERWATCH_SNAPSHOT_EVERY_S: snapshot at least this often when learning.",
    )
    reset_warm_days: float = Field(
        3,
        ge=0,
        description="RIVERWATCH_RESET_WARM_DAYS: a reset of the online model (concept drift) "
        "re-learns the labeled rows of this many event days before the newest label, read "
        "from the offline store (about 10 µs a row, on the learner's thread); 0 restarts "
        "from the prior.",
    )
    reset_warm_max_rows: int = Field(
        100_000,
        ge=0,
        description="RIVERWATCH_RESET_WARM_MAX_ROWS: labeled rows a reset re-learns at most, "
        "the newest of its window (the offline files taken newest first by the event times "
        "in their footers, so no more is read): ~1 s on the learner's thread, which scores "
        "too; 0 restarts from the prior.",
    )
    model_reload_s: float = Field(
        1.0, gt=0, description="RIVERWATCH_MODEL_RELOAD_S: how often scorers check for a new model."
    )
    review_threshold: float = Field(
        0.5, ge=0, le=1, description="RIVERWATCH_REVIEW_THRESHOLD: score at or above -> review."
    )
    decline_threshold: float = Field(
        0.8, ge=0, le=1, description="RIVERWATCH_DECLINE_THRESHOLD: score at or above -> decline."
    )
    batch_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="RIVERWATCH_BATCH_WEIGHT: score = w*batch + (1-w)*online, for a champion "
        "without a learned weight, or always with RIVERWATCH_BLEND=fixed.",
    )
    blend: Literal["learned", "fixed"] = Field(
        "learned",
        description="RIVERWATCH_BLEND: 'learned' serves the champion's blend weight, fitted on "
        "its hold-out at training; 'fixed' always RIVERWATCH_BATCH_WEIGHT.",
    )
    score_calibration: bool = Field(
        False,
        description="RIVERWATCH_SCORE_CALIBRATION: serve scores through the champion's "
        "calibration maps (fitted on its hold-out at training; off: they did not improve the "
        "Brier score on the quality benchmark's reported seeds).",
    )
    fraud_alert_threshold: float = Field(
        0.9,
        ge=0,
        le=1,
        description="RIVERWATCH_FRAUD_ALERT_THRESHOLD: score that publishes an alert.",
    )

    @field_validator("feature_attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        return parse_attributes(value)


class WorkerSettings(BaseModel):
    """A worker process: liveness, roles, metrics, logging."""

    worker_heartbeat_s: float = Field(
        2.0,
        gt=0,
        description="RIVERWATCH_WORKER_HEARTBEAT_S: worker liveness beat, read by /readyz.",
    )
    worker_roles: Annotated[frozenset[Role], NoDecode] = Field(
        frozenset(Role),
        description="RIVERWATCH_WORKER_ROLES: what a worker process runs: 'all', or some of "
        f"{', '.join(Role)} (comma-separated). "
        "Run the CPU-heavy forecasting, monitoring and training in other processes than "
        "scoring, or they share its interpreter lock (`riverwatch up` does).",
    )
    worker_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="RIVERWATCH_WORKER_METRICS_PORT: a worker serves /metrics here (unset: "
        "no listener; `up` aggregates workers through the API instead).",
    )
    worker_stop_grace_s: float = Field(
        30.0,
        gt=0,
        description="RIVERWATCH_WORKER_STOP_GRACE_S: a worker told to stop (SIGTERM, Ctrl-C) "
        "exits at the latest this long after, stopped cleanly or not (its uncommitted records "
        "are read again by the next owner).",
    )
    worker_trim_s: float = Field(
        30.0,
        ge=0,
        description="RIVERWATCH_WORKER_TRIM_S: a worker gives the heap memory it freed back to "
        "the OS this often (glibc's malloc_trim; 0: never, and nothing happens off glibc).",
    )
    log_level: str = Field("INFO", description="RIVERWATCH_LOG_LEVEL: python logging level.")

    @field_validator("worker_roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        return parse_roles(value)


class ForecastSettings(BaseModel):
    """The forecaster and the derived KPI series."""

    forecast_horizon: int = Field(
        60, ge=1, le=1440, description="RIVERWATCH_FORECAST_HORIZON: steps each forecast covers."
    )
    forecast_coverage: float = Field(
        0.9, gt=0, lt=1, description="RIVERWATCH_FORECAST_COVERAGE: target coverage of intervals."
    )
    forecast_window: int = Field(
        200, ge=20, description="RIVERWATCH_FORECAST_WINDOW: residuals kept per step for intervals."
    )
    forecast_anomaly_width: float = Field(
        2.25,
        gt=0,
        description="RIVERWATCH_FORECAST_ANOMALY_WIDTH: anomaly band = one-step interval x this.",
    )
    forecast_anomaly_run: int = Field(
        1, ge=1, description="RIVERWATCH_FORECAST_ANOMALY_RUN: points outside the band per alert."
    )
    forecast_anomaly_cooldown: int = Field(
        10, ge=0, description="RIVERWATCH_FORECAST_ANOMALY_COOLDOWN: points between two alerts."
    )
    forecast_seasonality: Annotated[dict[str, Annotated[int, Field(ge=0)]], NoDecode] = Field(
        default_factory=dict,
        description="RIVERWATCH_FORECAST_SEASONALITY: periods by series, 'id=12,sim.*=1440' "
        "(fnmatch patterns); unset series are detected from their step.",
    )
    derived_grace_s: float = Field(
        10.0,
        ge=0,
        description="RIVERWATCH_DERIVED_GRACE_S: event-time lateness before a minute closes.",
    )

    @field_validator("forecast_seasonality", mode="before")
    @classmethod
    def _periods(cls, value: Any) -> Any:
        return parse_periods(value)


class TrainingSettings(BaseModel):
    """The offline store and the trainer's windows and promotion rule."""

    offline_flush_rows: int = Field(
        5000, ge=1, description="RIVERWATCH_OFFLINE_FLUSH_ROWS: labeled rows per offline file."
    )
    train_days: float = Field(
        21, gt=0, description="RIVERWATCH_TRAIN_DAYS: batch-model training window (event days)."
    )
    holdout_days: float = Field(
        7, gt=0, description="RIVERWATCH_HOLDOUT_DAYS: hold-out window the challenger is judged on."
    )
    promotion_metric: Literal["ap", "cp@100"] = Field(
        "ap", description="RIVERWATCH_PROMOTION_METRIC: 'ap' or 'cp@100' decides promotions."
    )
    promotion_margin: float = Field(
        0.0, ge=0, description="RIVERWATCH_PROMOTION_MARGIN: absolute gain needed to promote."
    )
    train_refit: bool = Field(
        True,
        description="RIVERWATCH_TRAIN_REFIT: a challenger is judged on the hold-out, then fitted "
        "again on the training window and the hold-out (every matured label) to be served.",
    )
    train_half_life_days: float = Field(
        7,
        ge=0,
        description="RIVERWATCH_TRAIN_HALF_LIFE_DAYS: a training row's weight halves every this "
        "many days of age (0: every row weighs the same).",
    )
    train_members: int = Field(
        1,
        ge=1,
        le=16,
        description="RIVERWATCH_TRAIN_MEMBERS: batch models a retrain fits, each early-stopped "
        "on its own random validation split, and serves averaged (log-odds): more are a little "
        "better and cost as many times the batch model's scoring CPU and fit time.",
    )
    train_max_rows: int = Field(
        250_000,
        ge=1000,
        description="RIVERWATCH_TRAIN_MAX_ROWS: labeled rows a retrain reads at most, counted "
        "from the offline files' metadata before any is read: the training window starts at "
        "the latest day that keeps the hold-out and the days after it within this (a retrain "
        "whose hold-out alone holds more fails and says so). About 550 bytes a row in memory.",
    )
    retrain_every_days: float = Field(
        1,
        ge=0,
        description="RIVERWATCH_RETRAIN_EVERY_DAYS: the trainer retrains on its own each time "
        "this many event days of labels have matured since its last scheduled retrain "
        "(0: only when asked on `control`).",
    )
