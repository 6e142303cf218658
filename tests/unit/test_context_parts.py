"""The composition root's small parts: each field of a part is its setting."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from riverwatch.context import Context
from riverwatch.context_parts import ApiConfig, WebhookConfig, WorkerConfig
from riverwatch.core.kafka import KafkaConfig
from riverwatch.core.limits import DEFAULT_LIMITS
from riverwatch.core.redis import RedisConfig
from riverwatch.core.settings import Settings

# part field -> setting, where the names differ (every other field has its setting's name)
RENAMED = {
    KafkaConfig: {
        "bootstrap": "kafka_bootstrap",
        "fetch_wait_ms": "kafka_fetch_wait_ms",
        "session_timeout_ms": "session_timeout_ms",
        "partitions": "partitions",
    },
    RedisConfig: {"url": "redis_url"},
    ApiConfig: {
        "max_lag": "max_lag",
        "heartbeat_s": "worker_heartbeat_s",
        "filter_max_subjects": "alert_filter_max_subjects",
        "filter_max_subject_len": "alert_filter_max_subject_len",
        "webhook_allow_loopback": "webhook_allow_loopback",
        "webhook_secret_overlap_s": "webhook_secret_overlap_s",
        "data_dir": "data_dir",
    },
    WebhookConfig: {},
    WorkerConfig: {
        "roles": "worker_roles",
        "heartbeat_s": "worker_heartbeat_s",
        "trim_s": "worker_trim_s",
        "batch_max": "score_batch_max",
        "seasonality": "forecast_seasonality",
    },
}
PREFIX = {
    KafkaConfig: "kafka_",
    RedisConfig: "redis_",
    ApiConfig: "api_",
    WebhookConfig: "webhook_",
}


def _setting(part: type, field: str) -> str:
    if field in RENAMED[part]:
        return RENAMED[part][field]
    if part is ApiConfig and field.startswith("sse_"):
        return "alert_" + field
    return PREFIX.get(part, "") + field


def test_each_field_of_a_part_is_its_setting(tmp_path: Path) -> None:
    s = Settings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
        kafka_ssl_ca_file=tmp_path / "ca.pem",
        kafka_fetch_wait_ms=7,
        session_timeout_ms=9000,
        partitions=3,
        redis_url="rediss://r:6380/1",
        redis_password=SecretStr("rp"),
        api_max_records=17,
        alert_sse_poll_s=0.3,
        webhook_timeout_s=2.5,
        worker_roles="scoring,learning",
        score_batch_max=123,
        forecast_seasonality="a*=12",
        data_dir=tmp_path,
    )
    ctx = Context.from_settings(s)
    parts = {
        KafkaConfig: ctx.kafka_config,
        RedisConfig: ctx.redis_config,
        ApiConfig: ctx.api_config,
        WebhookConfig: ctx.webhook_config,
        WorkerConfig: ctx.worker_config,
    }
    for kind, part in parts.items():
        for f in dataclasses.fields(kind):
            assert getattr(part, f.name) == getattr(s, _setting(kind, f.name)), (kind, f.name)


def test_the_record_limits_default_to_the_settings_defaults() -> None:
    assert Context.from_settings(Settings()).limits == DEFAULT_LIMITS
    assert Context.from_settings(Settings.model_construct()).limits == DEFAULT_LIMITS


def test_the_monitor_core_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    """A core built from its own defaults (unit tests, benchmarks) is the monitor the worker
    runs, but for what a deployment decides: the partitions a window waits for, and the
    follow-up retrain's delay (the label delay plus the trainer's hold-out). Before, the
    reference sample (20,000 rows against 5,000), the count windows (none against 2,000 rows)
    and the performance drop's persistence (1 window against 2) differed."""
    from riverwatch.monitors.core.config import CoreConfig
    from riverwatch.monitors.policy.config import PolicyConfig

    built = Context.from_settings(Settings(data_dir=tmp_path)).monitor_core()
    own = CoreConfig(features=built.features, drift_columns=built.drift_columns)
    deployed = {"sources", "policy"}
    for f in dataclasses.fields(CoreConfig):
        if f.name not in deployed:
            assert getattr(built, f.name) == getattr(own, f.name), f.name
    assert built.sources == Settings().partitions
    for f in dataclasses.fields(PolicyConfig):
        if f.name != "followup_s":
            assert getattr(built.policy, f.name) == getattr(PolicyConfig(), f.name), f.name


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is not UTC (a naive time read as local would show)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("naive", [False, True])
@pytest.mark.usefixtures("new_york")
def test_the_limits_read_a_naive_time_as_utc(naive: bool) -> None:
    """ctx.limits: a naive event-time bound is UTC, whatever the machine's zone."""
    start = datetime(2001, 2, 3) if naive else datetime.fromisoformat("2001-02-03T00:00+02:00")
    s = Settings.model_construct(max_amount=5.0, max_map_keys=3, min_event_time=start)
    limits = Context.from_settings(s).limits
    want = datetime(2001, 2, 3, tzinfo=UTC) - (timedelta(0) if naive else timedelta(hours=2))
    assert limits.min_epoch == want.timestamp()
    assert (limits.max_amount, limits.max_map_keys) == (5.0, 3)
