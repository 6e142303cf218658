"""Fixtures shared by the integration tests (the stack and ``settings`` are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from riverwatch.core.settings import Settings
from tests.support.topics import Topics


@pytest.fixture
def topics(settings: Settings) -> Iterator[Topics]:
    """A reader of ``control``, ``alerts`` and ``deadletter`` (tests.support.topics.Topics)."""
    t = Topics(settings)
    yield t
    t.c.close()
