"""Benchmarks: each module prints its own table (``make bench``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import ensure_topics
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack


def stack_settings(stack: EmbeddedStack, data_dir: Path, prefix: str, **overrides: Any) -> Settings:
    """Settings for a benchmark run on ``stack`` (its broker and Valkey), with its own topic
    prefix and data dir, and its topics created."""
    s = Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=stack.redis_url,
        topic_prefix=prefix,
        data_dir=data_dir,
        **overrides,
    )
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    return s
