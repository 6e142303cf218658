"""The API's producer is replaced after an error it cannot recover from (no broker needed: a
closed port makes every delivery time out, as a fresh broker that forgot the producer id does)."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import KafkaError, Producer

from riverwatch.api.producer import AsyncProducer
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.shell.procs import free_port
from tests.support.workers import poll


def dead_end() -> Producer:
    return Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{free_port()}",
            "enable.idempotence": True,
            "message.timeout.ms": 300,
            "log_level": 0,
        }
    )


def test_a_producer_whose_records_time_out_is_replaced() -> None:
    made: list[Producer] = []

    def factory() -> Producer:
        made.append(dead_end())
        return made[-1]

    first = dead_end()
    ap = AsyncProducer(first, factory=factory).start()

    async def send() -> None:
        with pytest.raises(ServiceUnavailable, match="refused a record"):
            await ap.produce("t", [(b"k", b"v")], timeout_s=30)

    try:
        asyncio.run(send())
        poll(lambda: ap.renewed == 1, 30, "a new producer")
        assert ap.producer is made[0] and ap.producer is not first
    finally:
        asyncio.run(ap.close(0))


def test_without_a_factory_the_producer_is_kept() -> None:
    first = dead_end()
    ap = AsyncProducer(first).start()

    async def send() -> None:
        with pytest.raises(ServiceUnavailable):
            await ap.produce("t", [(b"k", b"v")], timeout_s=30)

    try:
        asyncio.run(send())
        assert ap.producer is first and ap.renewed == 0
    finally:
        asyncio.run(ap.close(0))


@pytest.mark.parametrize("code", [KafkaError.PRODUCER_FENCED, KafkaError.UNKNOWN_PRODUCER_ID])
def test_a_fenced_or_forgotten_producer_is_replaced(code: int) -> None:
    """A broker that restarted without its state (Tansu keeps none) answers the old producer
    id with PRODUCER_FENCED or UNKNOWN_PRODUCER_ID on every record: a new producer must take
    over (a CI run saw 240 s of 503s after a broker restart when only the latter counted)."""
    made: list[Producer] = []

    def factory() -> Producer:
        made.append(dead_end())
        return made[-1]

    ap = AsyncProducer(dead_end(), factory=factory).start()
    try:
        ap._on_error(KafkaError(code))  # what a record's delivery report carries
        poll(lambda: ap.renewed == 1, 30, "a new producer")
    finally:
        asyncio.run(ap.close(0))
