"""The typed parts the composition root (riverwatch/context.py) builds from Settings: one
builder per part, and the groups that have no home below the runtimes (the API's knobs, the
webhook sender's, the worker roles'): those live here, beside their builders, because the
runtimes are above the root and the root cannot import them.

The lower floors define their own parts (``core.kafka.KafkaConfig``, ``core.redis.RedisConfig``,
``core.limits.EventLimits``, ``models.scoring.Thresholds``,
``models.forecast.types.ForecastConfig``) and never import the settings; these builders are
where each field of a part meets its setting. :class:`riverwatch.context.Context` exposes
them as cached properties; the shell, which has no context, calls the builders directly.

>>> s = Settings(kafka_bootstrap="k:9092", review_threshold=0.3)
>>> kafka_config(s).bootstrap, thresholds(s).review, api_config(s).max_records
('k:9092', 0.3, 10000)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from riverwatch.core.kafka import KafkaConfig
from riverwatch.core.limits import EventLimits, aware
from riverwatch.core.redis import RedisConfig
from riverwatch.core.roles import Role
from riverwatch.core.settings import Settings

if TYPE_CHECKING:  # imported where built, as in context.py
    from riverwatch.models.forecast.types import ForecastConfig
    from riverwatch.models.scoring import Thresholds


def kafka_config(s: Settings) -> KafkaConfig:
    """The broker's address, transport security and consumer timing."""
    return KafkaConfig(
        bootstrap=s.kafka_bootstrap,
        security_protocol=s.kafka_security_protocol,
        sasl_mechanism=s.kafka_sasl_mechanism,
        sasl_username=s.kafka_sasl_username,
        sasl_password=s.kafka_sasl_password,
        ssl_ca_file=s.kafka_ssl_ca_file,
        ssl_cert_file=s.kafka_ssl_cert_file,
        ssl_key_file=s.kafka_ssl_key_file,
        session_timeout_ms=s.session_timeout_ms,
        fetch_wait_ms=s.kafka_fetch_wait_ms,
        partitions=s.partitions,
    )


def redis_config(s: Settings) -> RedisConfig:
    """Redis's URL, password and TLS files."""
    return RedisConfig(
        url=s.redis_url,
        password=s.redis_password,
        ssl_ca_file=s.redis_ssl_ca_file,
        ssl_cert_file=s.redis_ssl_cert_file,
        ssl_key_file=s.redis_ssl_key_file,
    )


def event_limits(s: Settings) -> EventLimits:
    """The bounds of every accepted record (``RIVERWATCH_MAX_AMOUNT`` ...)."""
    return EventLimits(
        max_amount=s.max_amount,
        max_abs_value=s.max_abs_value,
        min_epoch=aware(s.min_event_time).timestamp(),
        max_epoch=aware(s.max_event_time).timestamp(),
        max_map_keys=s.max_map_keys,
        max_key_chars=s.max_key_chars,
        max_value_chars=s.max_value_chars,
        max_future_skew_s=s.max_future_skew_s,
    )


def thresholds(s: Settings) -> Thresholds:
    """``RIVERWATCH_REVIEW_THRESHOLD``, ``..._DECLINE_THRESHOLD``, ``..._BATCH_WEIGHT``,
    ``..._BLEND``, ``RIVERWATCH_SCORE_CALIBRATION``."""
    from riverwatch.models.scoring import Thresholds

    return Thresholds(
        s.review_threshold,
        s.decline_threshold,
        s.batch_weight,
        s.blend == "learned",
        s.score_calibration,
    )


def forecast_config(s: Settings) -> ForecastConfig:
    """The forecasters' knobs settings expose (``RIVERWATCH_FORECAST_*``); defaults for the
    rest."""
    from riverwatch.models.forecast.types import ForecastConfig

    return ForecastConfig(
        horizon=s.forecast_horizon,
        coverage=s.forecast_coverage,
        window=s.forecast_window,
        anomaly_width=s.forecast_anomaly_width,
        anomaly_run=s.forecast_anomaly_run,
        cooldown=s.forecast_anomaly_cooldown,
    )


@dataclass(frozen=True)
class ApiConfig:
    """What the API reads of the settings beyond the connections and the record limits
    (the settings named ``RIVERWATCH_API_*``, ``RIVERWATCH_ALERT_SSE_*``,
    ``RIVERWATCH_ALERT_FILTER_*`` after their suffix, and:) ``max_lag`` (RIVERWATCH_MAX_LAG),
    ``heartbeat_s`` (the workers' RIVERWATCH_WORKER_HEARTBEAT_S, which /readyz and the
    dashboard judge freshness by), ``webhook_*`` (what a subscription is checked and rotated
    with), ``data_dir`` (where `riverwatch up`'s supervisor reports)."""

    docs: bool
    max_body_bytes: int
    produce_timeout_s: float
    max_records: int
    max_errors: int
    max_lag: int
    max_streams: int
    max_streams_per_key: int
    redis_max_connections: int
    stream_token_ttl_s: int
    heartbeat_s: float
    sse_heartbeat_s: float
    sse_poll_s: float
    sse_max_s: float
    filter_max_subjects: int
    filter_max_subject_len: int
    webhook_allow_loopback: bool
    webhook_secret_overlap_s: float
    data_dir: Path


def api_config(s: Settings) -> ApiConfig:
    """The API's knobs (:class:`ApiConfig`)."""
    return ApiConfig(
        docs=s.api_docs,
        max_body_bytes=s.api_max_body_bytes,
        produce_timeout_s=s.api_produce_timeout_s,
        max_records=s.api_max_records,
        max_errors=s.api_max_errors,
        max_lag=s.max_lag,
        max_streams=s.api_max_streams,
        max_streams_per_key=s.api_max_streams_per_key,
        redis_max_connections=s.api_redis_max_connections,
        stream_token_ttl_s=s.api_stream_token_ttl_s,
        heartbeat_s=s.worker_heartbeat_s,
        sse_heartbeat_s=s.alert_sse_heartbeat_s,
        sse_poll_s=s.alert_sse_poll_s,
        sse_max_s=s.alert_sse_max_s,
        filter_max_subjects=s.alert_filter_max_subjects,
        filter_max_subject_len=s.alert_filter_max_subject_len,
        webhook_allow_loopback=s.webhook_allow_loopback,
        webhook_secret_overlap_s=s.webhook_secret_overlap_s,
        data_dir=s.data_dir,
    )


@dataclass(frozen=True)
class WebhookConfig:
    """The webhook sender's knobs: ``RIVERWATCH_WEBHOOK_*`` after their prefix."""

    allow_loopback: bool
    timeout_s: float
    backoff_base_s: float
    backoff_max_s: float
    max_attempts: int
    retry_horizon_s: float


def webhook_config(s: Settings) -> WebhookConfig:
    """The webhook sender's knobs (:class:`WebhookConfig`)."""
    return WebhookConfig(
        allow_loopback=s.webhook_allow_loopback,
        timeout_s=s.webhook_timeout_s,
        backoff_base_s=s.webhook_backoff_base_s,
        backoff_max_s=s.webhook_backoff_max_s,
        max_attempts=s.webhook_max_attempts,
        retry_horizon_s=s.webhook_retry_horizon_s,
    )


@dataclass(frozen=True)
class WorkerConfig:
    """The worker roles' own knobs (each the setting of the same name, ``RIVERWATCH_`` and
    upper case, but ``roles``: WORKER_ROLES, ``heartbeat_s``: WORKER_HEARTBEAT_S, ``trim_s``:
    WORKER_TRIM_S,
    ``batch_max``: SCORE_BATCH_MAX, ``seasonality``: FORECAST_SEASONALITY)."""

    roles: frozenset[Role]
    heartbeat_s: float
    trim_s: float
    data_dir: Path
    batch_max: int
    score_ttl_s: int
    label_horizon_s: int
    early_label_grace_s: float
    early_labels_max: int
    fraud_alert_threshold: float
    snapshot_every_s: float
    snapshot_every_labels: int
    reset_warm_days: float
    reset_warm_max_rows: int
    derived_grace_s: float
    seasonality: dict[str, int]
    retrain_every_days: float
    alert_cooldown_s: float
    alert_dedup_ttl_s: int
    monitor_snapshot_s: float


def worker_config(s: Settings) -> WorkerConfig:
    """The worker roles' knobs (:class:`WorkerConfig`)."""
    return WorkerConfig(
        roles=s.worker_roles,
        heartbeat_s=s.worker_heartbeat_s,
        trim_s=s.worker_trim_s,
        data_dir=s.data_dir,
        batch_max=s.score_batch_max,
        score_ttl_s=s.score_ttl_s,
        label_horizon_s=s.label_horizon_s,
        early_label_grace_s=s.early_label_grace_s,
        early_labels_max=s.early_labels_max,
        fraud_alert_threshold=s.fraud_alert_threshold,
        snapshot_every_s=s.snapshot_every_s,
        snapshot_every_labels=s.snapshot_every_labels,
        reset_warm_days=s.reset_warm_days,
        reset_warm_max_rows=s.reset_warm_max_rows,
        derived_grace_s=s.derived_grace_s,
        seasonality=s.forecast_seasonality,
        retrain_every_days=s.retrain_every_days,
        alert_cooldown_s=s.alert_cooldown_s,
        alert_dedup_ttl_s=s.alert_dedup_ttl_s,
        monitor_snapshot_s=s.monitor_snapshot_s,
    )
