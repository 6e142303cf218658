"""Shared fixtures: one embedded stack per test session, fresh names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import ensure_topics
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support import TEST_BROKER


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real broker (Tansu) and Valkey, started once for the whole session.

    Set RIVERWATCH_TEST_KAFKA_BOOTSTRAP / RIVERWATCH_TEST_REDIS_URL to run the integration
    tests against external servers instead, or RIVERWATCH_TEST_BROKER=kafka to have the
    session start Apache Kafka (shell.kafka_broker) in place of Tansu.
    """
    from riverwatch.shell.embedded import EmbeddedStack

    ext_kafka = os.environ.get("RIVERWATCH_TEST_KAFKA_BOOTSTRAP")
    ext_redis = os.environ.get("RIVERWATCH_TEST_REDIS_URL")
    s = EmbeddedStack(
        tmp_path_factory.mktemp("stack"),
        kafka=not ext_kafka,
        redis=not ext_redis,
        broker=TEST_BROKER,
    ).start()
    s.ext_bootstrap = ext_kafka  # type: ignore[attr-defined]
    s.ext_redis = ext_redis  # type: ignore[attr-defined]
    yield s
    s.stop()


@pytest.fixture(scope="session")
def apache_kafka(stack: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap of an Apache Kafka broker: the session's own when it runs one, else one
    started for the tests that need what only Apache Kafka does (e.g. serve kcat)."""
    if getattr(stack, "broker", None) == "kafka" and not getattr(stack, "ext_bootstrap", None):
        yield stack.bootstrap  # type: ignore[attr-defined]
        return
    from riverwatch.shell.kafka_broker import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("apache-kafka")).start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def kafka_settings(apache_kafka: str, settings: Settings) -> Settings:
    """``settings`` on Apache Kafka (same Valkey, prefix and data dir), topics created."""
    s = settings.model_copy(update={"kafka_bootstrap": apache_kafka})
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    return s


@pytest.fixture
def settings(stack: object, tmp_path: Path) -> Settings:
    """Settings for one test: its own topic prefix, consumer groups, Redis keys and data dir."""
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    s = Settings(
        kafka_bootstrap=getattr(stack, "ext_bootstrap", None) or stack.bootstrap,  # type: ignore[attr-defined]
        redis_url=getattr(stack, "ext_redis", None) or stack.redis_url,  # type: ignore[attr-defined]
        topic_prefix=prefix,
        data_dir=tmp_path / "data",
        partitions=2,
        session_timeout_ms=6000,
        snapshot_every_s=0.5,
        model_reload_s=0.2,
        retrain_every_days=0,  # no scheduled retrains unless a test asks (test_trainer.py)
    )
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    return s
