"""Typed, frozen settings read from ``RIVERWATCH_*`` environment variables.

Build them with :func:`load_settings` (or ``Settings(**overrides)`` in tests); nothing is read
at import time. Each field's description names its environment variable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riverwatch.core.errors import ConfigError

DAY_SECONDS = 86_400


class Settings(BaseSettings):
    """Every knob of riverwatch. Environment variable = ``RIVERWATCH_`` + field name, upper case."""

    model_config = SettingsConfigDict(env_prefix="RIVERWATCH_", frozen=True, extra="forbid")

    env: Literal["development", "production"] = Field(
        "development", description="RIVERWATCH_ENV: 'production' refuses placeholder secrets."
    )
    data_dir: Path = Field(
        Path(".riverwatch"),
        description="RIVERWATCH_DATA_DIR: API key file, offline store, registry artifacts, logs.",
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="RIVERWATCH_KAFKA_BOOTSTRAP: unset -> `up` starts an embedded broker.",
    )
    redis_url: str | None = Field(
        None, description="RIVERWATCH_REDIS_URL: redis://...; unset -> `up` starts embedded Valkey."
    )
    # Transport security (README, "Security"). Kafka: every confluent-kafka client and faust.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="RIVERWATCH_KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL (TLS, optionally with a "
        "client certificate) or SASL_SSL (TLS and a SASL login).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="RIVERWATCH_KAFKA_SASL_MECHANISM (SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(
        None, description="RIVERWATCH_KAFKA_SASL_USERNAME (SASL_* protocols)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="RIVERWATCH_KAFKA_SASL_PASSWORD (SASL_* protocols; from a secret)."
    )
    kafka_ssl_ca_file: Path | None = Field(
        None,
        description="RIVERWATCH_KAFKA_SSL_CA_FILE: PEM CA bundle that signed the brokers' "
        "certificates (unset: the system's CAs).",
    )
    kafka_ssl_cert_file: Path | None = Field(
        None, description="RIVERWATCH_KAFKA_SSL_CERT_FILE: PEM client certificate (mutual TLS)."
    )
    kafka_ssl_key_file: Path | None = Field(
        None, description="RIVERWATCH_KAFKA_SSL_KEY_FILE: PEM key of the client certificate."
    )
    # Redis: AUTH is the URL's password (redis://:<password>@host) or RIVERWATCH_REDIS_PASSWORD;
    # TLS is a rediss:// URL, verified against these files.
    redis_password: SecretStr | None = Field(
        None,
        description="RIVERWATCH_REDIS_PASSWORD: the AUTH password when the URL holds none "
        "(lets the URL stay in a ConfigMap and the password in a Secret).",
    )
    redis_ssl_ca_file: Path | None = Field(
        None,
        description="RIVERWATCH_REDIS_SSL_CA_FILE: PEM CA bundle for a rediss:// URL "
        "(unset: the system's CAs).",
    )
    redis_ssl_cert_file: Path | None = Field(
        None, description="RIVERWATCH_REDIS_SSL_CERT_FILE: PEM client certificate (mutual TLS)."
    )
    redis_ssl_key_file: Path | None = Field(
        None, description="RIVERWATCH_REDIS_SSL_KEY_FILE: PEM key of the client certificate."
    )
    topic_prefix: str = Field(
        "", description="RIVERWATCH_TOPIC_PREFIX: prepended to every topic, group and Redis key."
    )
    partitions: int = Field(
        4, ge=1, description="RIVERWATCH_PARTITIONS: partitions for the topics riverwatch creates."
    )
    consumer_group: str = Field(
        "riverwatch", description="RIVERWATCH_CONSUMER_GROUP: base name of the consumer groups."
    )
    session_timeout_ms: int = Field(
        6000,
        ge=1000,
        description="RIVERWATCH_SESSION_TIMEOUT_MS: session timeout (short: quick joins).",
    )
    kafka_fetch_wait_ms: int = Field(
        0,
        ge=0,
        description="RIVERWATCH_KAFKA_FETCH_WAIT_MS: consumers' fetch.wait.max.ms; 0 picks it "
        "per broker (Tansu holds every fetch that long even with data: 2; Kafka: 100).",
    )
    api_host: str = Field("127.0.0.1", description="RIVERWATCH_API_HOST: address the API binds.")
    api_port: int = Field(8000, ge=0, le=65535, description="RIVERWATCH_API_PORT: API port.")
    api_max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="RIVERWATCH_API_MAX_BODY_BYTES: larger bodies get 413.",
    )
    api_produce_timeout_s: float = Field(
        10.0, gt=0, description="RIVERWATCH_API_PRODUCE_TIMEOUT_S: wait for broker acks before 503."
    )
    max_lag: int = Field(
        100_000,
        ge=0,
        description="RIVERWATCH_MAX_LAG: while the scorers are more than this many transactions "
        "behind (their group's lag on `transactions`, summed over partitions, read at most "
        "once a second), POST /v1/transactions answers 429 with Retry-After; 0 turns it off.",
    )
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
    feature_attributes: str = Field(
        "",
        description="RIVERWATCH_FEATURE_ATTRIBUTES: comma-separated names of numeric transaction "
        "`attributes` to use as extra model features (columns attr_<name>); a missing or "
        "non-numeric one scores as 0.0 and is counted in riverwatch_attribute_fills_total. "
        "Empty: the built-in features only.",
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
    fraud_alert_threshold: float = Field(
        0.9,
        ge=0,
        le=1,
        description="RIVERWATCH_FRAUD_ALERT_THRESHOLD: score that publishes an alert.",
    )
    worker_heartbeat_s: float = Field(
        2.0,
        gt=0,
        description="RIVERWATCH_WORKER_HEARTBEAT_S: worker liveness beat, read by /readyz.",
    )
    worker_roles: str = Field(
        "all",
        description="RIVERWATCH_WORKER_ROLES: what a worker process runs: 'all', or some of "
        "scoring, learning, alerts, forecasting, monitoring, training (comma-separated). "
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
    log_level: str = Field("INFO", description="RIVERWATCH_LOG_LEVEL: python logging level.")

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
    forecast_seasonality: str = Field(
        "",
        description="RIVERWATCH_FORECAST_SEASONALITY: periods by series, 'id=12,sim.*=1440' "
        "(fnmatch patterns); unset series are detected from their step.",
    )
    derived_grace_s: float = Field(
        10.0,
        ge=0,
        description="RIVERWATCH_DERIVED_GRACE_S: event-time lateness before a minute closes.",
    )

    alert_stream_maxlen: int = Field(
        10_000, ge=100, description="RIVERWATCH_ALERT_STREAM_MAXLEN: alerts kept for history/SSE."
    )
    alert_dedup_ttl_s: int = Field(
        7 * DAY_SECONDS,
        ge=60,
        description="RIVERWATCH_ALERT_DEDUP_TTL_S: how long an alert_id is remembered (dedup).",
    )
    alert_cooldown_s: float = Field(
        300.0,
        ge=0,
        description="RIVERWATCH_ALERT_COOLDOWN_S: repeats of a (kind, subject) held back (s).",
    )
    alert_cooldown_kinds: str = Field(
        "fraud=0,retrain=0,drift=0,performance=0,fairness=0",
        description="RIVERWATCH_ALERT_COOLDOWN_KINDS: per-kind cooldowns, 'kind=seconds,...'; "
        "none by default for fraud (one per transaction), retrain (one per action) and the "
        "monitor's kinds, whose cooldown the policy keeps in event time "
        "(RIVERWATCH_MONITOR_COOLDOWN_S): a wall-clock one here would hide a replay's alerts.",
    )
    alert_sse_heartbeat_s: float = Field(
        15.0, gt=0, description="RIVERWATCH_ALERT_SSE_HEARTBEAT_S: SSE keep-alive comment period."
    )
    alert_sse_poll_s: float = Field(
        0.5,
        gt=0,
        le=5,
        description="RIVERWATCH_ALERT_SSE_POLL_S: how often an open alert stream reads new "
        "alerts; it holds no Redis connection in between.",
    )
    alert_sse_max_s: float = Field(
        300.0,
        gt=0,
        description="RIVERWATCH_ALERT_SSE_MAX_S: an alert stream ends after this long; the "
        "client reconnects by itself with Last-Event-ID and misses nothing.",
    )
    alert_filter_max_subjects: int = Field(
        100,
        ge=1,
        le=10_000,
        description="RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS: subject patterns one alert query or "
        "stream may name (422 beyond).",
    )
    alert_filter_max_subject_len: int = Field(
        256,
        ge=1,
        le=4096,
        description="RIVERWATCH_ALERT_FILTER_MAX_SUBJECT_LEN: characters of one subject pattern.",
    )
    api_max_streams: int = Field(
        50,
        ge=1,
        description="RIVERWATCH_API_MAX_STREAMS: event streams (alerts, dashboard) one API "
        "process serves at once; more get 429 with Retry-After.",
    )
    api_max_streams_per_key: int = Field(
        5, ge=1, description="RIVERWATCH_API_MAX_STREAMS_PER_KEY: open event streams per API key."
    )
    api_redis_max_connections: int = Field(
        100, ge=2, description="RIVERWATCH_API_REDIS_MAX_CONNECTIONS: the API's Redis pool size."
    )
    api_stream_token_ttl_s: int = Field(
        60,
        ge=5,
        le=3600,
        description="RIVERWATCH_API_STREAM_TOKEN_TTL_S: lifetime of a stream token (POST "
        "/v1/stream-tokens), which lets a browser open event streams without its key in a URL.",
    )
    api_docs: bool = Field(
        True,
        description="RIVERWATCH_API_DOCS: serve /docs and /redoc (their assets come from this "
        "server, never a CDN); false turns them off (/openapi.json stays).",
    )
    webhook_allow_loopback: bool = Field(
        False,
        description="RIVERWATCH_WEBHOOK_ALLOW_LOOPBACK: allow webhooks to 127.0.0.1/::1/localhost "
        "(local development and tests only).",
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, description="RIVERWATCH_WEBHOOK_TIMEOUT_S: a webhook POST's whole time limit."
    )
    webhook_backoff_base_s: float = Field(
        1.0, gt=0, description="RIVERWATCH_WEBHOOK_BACKOFF_BASE_S: first retry delay (doubles)."
    )
    webhook_backoff_max_s: float = Field(
        600.0, gt=0, description="RIVERWATCH_WEBHOOK_BACKOFF_MAX_S: longest delay between retries."
    )
    webhook_max_attempts: int = Field(
        100, ge=1, description="RIVERWATCH_WEBHOOK_MAX_ATTEMPTS: attempts before a delivery fails."
    )
    webhook_retry_horizon_s: float = Field(
        DAY_SECONDS,
        gt=0,
        description="RIVERWATCH_WEBHOOK_RETRY_HORIZON_S: an alert not delivered by then fails.",
    )
    webhook_queue_maxlen: int = Field(
        100_000,
        ge=10,
        description="RIVERWATCH_WEBHOOK_QUEUE_MAXLEN: pending alerts per subscription; "
        "beyond it the oldest are dropped and counted.",
    )
    webhook_secret_overlap_s: float = Field(
        DAY_SECONDS,
        ge=0,
        le=30 * DAY_SECONDS,
        description="RIVERWATCH_WEBHOOK_SECRET_OVERLAP_S: after a subscription's secret is "
        "rotated, deliveries are signed with the old and the new secret for this long (s).",
    )

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
    retrain_every_days: float = Field(
        1,
        ge=0,
        description="RIVERWATCH_RETRAIN_EVERY_DAYS: the trainer retrains on its own each time "
        "this many event days of labels have matured since its last scheduled retrain "
        "(0: only when asked on `control`).",
    )
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
    monitor_drift_exclude: str = Field(
        "hour,is_weekend,is_night",
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

    monitor_warmup_days: float = Field(
        30.0,
        ge=0,
        description="RIVERWATCH_MONITOR_WARMUP_DAYS: event days after the first event before "
        "the monitor's reference starts (the longest feature window: 30-day features are "
        "still filling before); nothing is judged before.",
    )
    monitor_reference_days: float = Field(
        7.0,
        gt=0,
        description="RIVERWATCH_MONITOR_REFERENCE_DAYS: event days the reference covers once "
        "warm (and after POST /v1/monitor/reference, a reset or a promotion without rows).",
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
        0.02,
        gt=0,
        le=1,
        description="RIVERWATCH_MONITOR_QUALITY_NEW_SHARE: least share of a window's events "
        "a value not seen in the reference must reach for a quality alert (new category).",
    )

    max_amount: float = Field(
        1e9, gt=0, description="RIVERWATCH_MAX_AMOUNT: largest transaction amount accepted."
    )
    max_abs_value: float = Field(
        1e15,
        gt=0,
        description="RIVERWATCH_MAX_ABS_VALUE: largest magnitude of a metric point's value or "
        "a numeric transaction attribute.",
    )
    min_event_time: datetime = Field(
        datetime(1970, 1, 1, tzinfo=UTC),
        description="RIVERWATCH_MIN_EVENT_TIME: earliest event timestamp accepted (ISO 8601).",
    )
    max_event_time: datetime = Field(
        datetime(2100, 1, 1, tzinfo=UTC),
        description="RIVERWATCH_MAX_EVENT_TIME: event timestamps must be before this.",
    )
    max_map_keys: int = Field(
        16,
        ge=0,
        description="RIVERWATCH_MAX_MAP_KEYS: keys a transaction's `groups` or "
        "`attributes` may hold (each).",
    )
    max_key_chars: int = Field(
        64, ge=1, description="RIVERWATCH_MAX_KEY_CHARS: longest `groups`/`attributes` key."
    )
    max_value_chars: int = Field(
        256,
        ge=1,
        description="RIVERWATCH_MAX_VALUE_CHARS: longest `groups`/`attributes` string value.",
    )
    api_max_records: int = Field(
        10_000,
        ge=1,
        description="RIVERWATCH_API_MAX_RECORDS: records one ingest request may hold (413 over).",
    )
    api_max_errors: int = Field(
        20,
        ge=1,
        description="RIVERWATCH_API_MAX_ERRORS: errors listed in an ingest answer (the first "
        "ones; `errors_omitted` counts the rest).",
    )

    @field_validator("min_event_time", "max_event_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    supervise_max_restarts: int = Field(
        5,
        ge=1,
        description="RIVERWATCH_SUPERVISE_MAX_RESTARTS: restarts of one child `up` allows per "
        "RIVERWATCH_SUPERVISE_WINDOW_S before it reports the child as crash-looping.",
    )
    supervise_window_s: float = Field(
        60.0,
        gt=0,
        description="RIVERWATCH_SUPERVISE_WINDOW_S: window of the restart budget; a child that "
        "stays up this long starts again with a clean record.",
    )
    supervise_backoff_max_s: float = Field(
        30.0,
        gt=0,
        description="RIVERWATCH_SUPERVISE_BACKOFF_MAX_S: longest wait before restarting a child "
        "(the wait doubles with each exit in the window, from 0.5 s).",
    )

    # The demo (`riverwatch up --demo`, shell/demo.py).
    demo_customers: int = Field(
        1000,
        ge=10,
        description="RIVERWATCH_DEMO_CUSTOMERS: simulated customers of the demo (twice as "
        "many terminals; about 2 transactions per customer and event day).",
    )
    demo_seed: int = Field(0, description="RIVERWATCH_DEMO_SEED: the demo simulator's seed.")
    demo_backfill_days: float = Field(
        40.0,
        ge=0,
        description="RIVERWATCH_DEMO_BACKFILL_DAYS: event days the demo sends first as fast "
        "as the system takes them (past the monitor's warm-up), before a first retrain.",
    )
    demo_days_per_minute: float = Field(
        2.0,
        gt=0,
        description="RIVERWATCH_DEMO_DAYS_PER_MINUTE: event days per wall minute after the "
        "backfill.",
    )
    demo_drift_after_s: float = Field(
        60.0,
        ge=0,
        description="RIVERWATCH_DEMO_DRIFT_AFTER_S: wall seconds the demo stays calm before it "
        "injects its drift episode.",
    )
    demo_drift_card_share: float = Field(
        0.03,
        ge=0,
        le=1,
        description="RIVERWATCH_DEMO_DRIFT_CARD_SHARE: the episode's new fraud pattern: this "
        "share of the cards gets a card-testing burst each event day.",
    )
    demo_drift_region: str = Field(
        "south",
        description="RIVERWATCH_DEMO_DRIFT_REGION: the region whose customers' spending "
        "shifts in the episode ('' for none).",
    )
    demo_drift_spend_factor: float = Field(
        1.5,
        gt=0,
        description="RIVERWATCH_DEMO_DRIFT_SPEND_FACTOR: that region's legitimate amounts are "
        "multiplied by this in the episode.",
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.review_threshold > self.decline_threshold:
            raise ConfigError(
                "RIVERWATCH_REVIEW_THRESHOLD must not exceed RIVERWATCH_DECLINE_THRESHOLD "
                f"({self.review_threshold} > {self.decline_threshold})"
            )
        if self.env == "production" and (not self.kafka_bootstrap or not self.redis_url):
            raise ConfigError(
                "production mode needs RIVERWATCH_KAFKA_BOOTSTRAP and RIVERWATCH_REDIS_URL "
                "(the embedded broker and Valkey are for development only)"
            )
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ConfigError(
                f"RIVERWATCH_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "RIVERWATCH_KAFKA_SASL_USERNAME and RIVERWATCH_KAFKA_SASL_PASSWORD"
            )
        if self.min_event_time >= self.max_event_time:
            raise ConfigError(
                "RIVERWATCH_MIN_EVENT_TIME must be before RIVERWATCH_MAX_EVENT_TIME "
                f"({self.min_event_time} >= {self.max_event_time})"
            )
        return self

    @property
    def label_delay_s(self) -> int:
        """The label delay in seconds of event time."""
        return self.label_delay_days * DAY_SECONDS


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]


def to_env(settings: Settings) -> dict[str, str]:
    """The ``RIVERWATCH_*`` variables that rebuild ``settings`` in a child process."""
    out = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # str() of a secret is '**********'
            value = value.get_secret_value()
        if value is not None:
            out[f"RIVERWATCH_{name.upper()}"] = str(value)
    return out
