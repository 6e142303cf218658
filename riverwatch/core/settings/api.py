"""What the API serves and what every accepted record is bounded by (the API and the workers
validate with the same limits)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

from riverwatch.core.limits import DEFAULT_LIMITS as _D


class ApiSettings(BaseModel):
    """The API's listener, request limits, back-pressure and event streams."""

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


class EventLimitSettings(BaseModel):
    """The bounds of every accepted record and of an ingest request's answer (the record
    bounds' defaults are core.limits.DEFAULT_LIMITS, what a record validated without limits
    gets)."""

    max_amount: float = Field(
        _D.max_amount,
        gt=0,
        description="RIVERWATCH_MAX_AMOUNT: largest transaction amount accepted.",
    )
    max_abs_value: float = Field(
        _D.max_abs_value,
        gt=0,
        description="RIVERWATCH_MAX_ABS_VALUE: largest magnitude of a metric point's value or "
        "a numeric transaction attribute.",
    )
    min_event_time: datetime = Field(
        datetime.fromtimestamp(_D.min_epoch, UTC),  # 1970-01-01
        description="RIVERWATCH_MIN_EVENT_TIME: earliest event timestamp accepted (ISO 8601).",
    )
    max_event_time: datetime = Field(
        datetime.fromtimestamp(_D.max_epoch, UTC),  # 2100-01-01
        description="RIVERWATCH_MAX_EVENT_TIME: event timestamps must be before this.",
    )
    max_future_skew_s: float = Field(
        _D.max_future_skew_s,
        ge=0,
        description="RIVERWATCH_MAX_FUTURE_SKEW_S: event timestamps more than this many "
        "seconds ahead of the receiving process's clock are refused (a far-future event would "
        "move the learner's and the monitor's event time ahead of the real stream); 0 turns "
        "it off (replays of synthetic future data).",
    )
    max_map_keys: int = Field(
        _D.max_map_keys,
        ge=0,
        description="RIVERWATCH_MAX_MAP_KEYS: keys a transaction's `groups` or "
        "`attributes` may hold (each).",
    )
    max_key_chars: int = Field(
        _D.max_key_chars,
        ge=1,
        description="RIVERWATCH_MAX_KEY_CHARS: longest `groups`/`attributes` key.",
    )
    max_value_chars: int = Field(
        _D.max_value_chars,
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
