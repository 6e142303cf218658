"""Consumers' fetch settings per broker (riverwatch.core.kafka): on Apache Kafka the helper's
fetches are held until 32 KiB are in (within the 100 ms wait), the scorer's (the latency path)
answered with the first byte; Tansu's are left as they were (one byte, 100 ms: its fetch wait is
fragile, tests/integration/test_tansu_fetch.py). RIVERWATCH_KAFKA_FETCH_WAIT_MS sets the wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from riverwatch.context_parts import kafka_config
from riverwatch.core import kafka
from riverwatch.core.kafka import consumer_config
from riverwatch.core.settings import Settings

BOOTSTRAP = "broker.example:9092"


@pytest.fixture
def kind() -> Iterator[dict[str, str]]:
    """The broker kind the bootstrap is remembered as (no broker is asked)."""
    yield kafka._brokers
    kafka._brokers.pop(BOOTSTRAP, None)


def fetch(latency: bool, **settings: object) -> tuple[int, int]:
    s = Settings(kafka_bootstrap=BOOTSTRAP, redis_url="redis://127.0.0.1:1/0", **settings)  # type: ignore[arg-type]
    conf = consumer_config(kafka_config(s), "g", latency)
    return conf["fetch.wait.max.ms"], conf["fetch.min.bytes"]


def test_apache_kafka_holds_fetches_for_32_kib_off_the_latency_path(kind: dict[str, str]) -> None:
    kind[BOOTSTRAP] = "kafka"
    assert fetch(latency=False) == (100, 32 * 1024)
    assert fetch(latency=True) == (100, 1)
    assert fetch(latency=False, kafka_fetch_wait_ms=20) == (20, 32 * 1024)


def test_tansu_keeps_one_byte_and_its_long_wait(kind: dict[str, str]) -> None:
    kind[BOOTSTRAP] = "tansu"
    assert fetch(latency=True) == (100, 1)
    assert fetch(latency=False) == (100, 1)
