"""The API's producer: acks=all, and while no broker answers it refuses at once instead of
waiting for acks (no broker needed: a closed port is a broker that is down)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from confluent_kafka import Producer

from riverwatch.api.producer import AsyncProducer, BrokerDown, BrokerHealth
from riverwatch.api.resources import ingest_producer
from riverwatch.context_parts import kafka_config
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.core.settings import Settings
from riverwatch.shell.procs import free_port
from tests.support.workers import poll


def test_queued_records_fail_fast_and_later_batches_are_refused_before_producing() -> None:
    health = BrokerHealth()
    down = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{free_port()}",
            "enable.idempotence": True,
            "message.timeout.ms": 120_000,  # the records would wait two minutes for acks
            "log_level": 0,
            "error_cb": health.on_error,
        }
    )
    ap = AsyncProducer(down, health=health).start()

    async def send() -> float:
        t0 = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await ap.produce("t", [(b"k", b"v")], timeout_s=60)
        return time.monotonic() - t0

    try:
        waited = asyncio.run(send())
        # vs 60 s of timeout; 30, not less: a loaded 2-core CI machine delays the first refusal
        assert waited < 30, f"answered after {waited:.1f} s, not at once"
        assert health.down()
        queued = len(down)
        with pytest.raises(BrokerDown, match="nothing was stored"):
            asyncio.run(ap.produce("t", [(b"k", b"v2")], timeout_s=60))
        assert len(down) == queued  # refused before anything was queued
    finally:
        asyncio.run(ap.close(0))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_ingest_producer_waits_for_every_in_sync_replica() -> None:
    """The effective configuration librdkafka prints for the producer behind every 202."""
    lines = Lines()
    logger = logging.getLogger(f"{__name__}.rdkafka")
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    p = ingest_producer(
        kafka_config(settings), BrokerHealth(), debug="conf", logger=logger, log_level=7
    )
    poll(lambda: p.poll(0.05) is not None and any("acks" in ln for ln in lines.lines), 10, "conf")
    conf = [ln.split("]: ", 1)[-1].strip() for ln in lines.lines]
    assert "request.required.acks = -1" in conf  # -1 is all: every in-sync replica
    assert "enable.idempotence = true" in conf
