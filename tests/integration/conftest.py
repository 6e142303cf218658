"""Fixtures shared by the integration tests (the stack and ``settings`` are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from riverwatch.core.settings import Settings
from tests.support.topics import Topics


@pytest.fixture
def topics(settings: Settings) -> Iterator[Topics]:
    """A reader of ``control``, ``alerts`` and ``deadletter`` (tests.support.topics.Topics)."""
    t = Topics(settings)
    yield t
    t.c.close()


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    """A Redis client of the test's Valkey."""
    client = redis.Redis.from_url(settings.redis_url or "")
    yield client
    client.close()
