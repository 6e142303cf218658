"""Alerts (store, cooldowns, streams and their filters) and webhook delivery."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from riverwatch.core.outputs import AlertKind
from riverwatch.core.settings.base import DAY_SECONDS
from riverwatch.core.settings.types import parse_kind_seconds


class AlertSettings(BaseModel):
    """The alert stream, dedup and cooldowns, and the alert streams' filters."""

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
    alert_cooldown_kinds: Annotated[dict[AlertKind, float], NoDecode] = Field(
        default_factory=lambda: parse_kind_seconds(
            "fraud=0,retrain=0,drift=0,performance=0,fairness=0"
        ),
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

    @field_validator("alert_cooldown_kinds", mode="before")
    @classmethod
    def _cooldowns(cls, value: Any) -> Any:
        return parse_kind_seconds(value)


class WebhookSettings(BaseModel):
    """Webhook delivery: address safety, retries, queues, secret rotation."""

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
