"""Shared fixtures: one embedded stack per test session, fresh names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.kafka import ensure_topics
from core.settings import Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real broker (Tansu) and Valkey, started once for the whole session.

    Set RIVERWATCH_TEST_KAFKA_BOOTSTRAP / RIVERWATCH_TEST_REDIS_URL to run the integration
    tests against external servers instead.
    """
    from riverwatch.embedded import EmbeddedStack

    ext_kafka = os.environ.get("RIVERWATCH_TEST_KAFKA_BOOTSTRAP")
    ext_redis = os.environ.get("RIVERWATCH_TEST_REDIS_URL")
    s = EmbeddedStack(
        tmp_path_factory.mktemp("stack"), kafka=not ext_kafka, redis=not ext_redis
    ).start()
    s.ext_bootstrap = ext_kafka  # type: ignore[attr-defined]
    s.ext_redis = ext_redis  # type: ignore[attr-defined]
    yield s
    s.stop()


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
    )
    ensure_topics(s)
    return s
