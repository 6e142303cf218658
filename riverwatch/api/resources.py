"""What the API holds open while it runs: the producer, the Redis client, the broker probe,
beside the composition root's :class:`riverwatch.context.Context` (names, stores).

:func:`open_resources` builds them (called from the app's lifespan, never at import time) and
:meth:`Resources.close` flushes the producer and closes the connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from confluent_kafka import Producer
from fastapi import Request

from riverwatch.api.backpressure import LagGate
from riverwatch.api.producer import AsyncProducer, BrokerHealth
from riverwatch.api.streams import StreamSlots
from riverwatch.api.sync_scorer import SyncScorer
from riverwatch.context import Context
from riverwatch.context_parts import ApiConfig
from riverwatch.core.kafka import KafkaConfig, broker_reachable, producer
from riverwatch.core.names import Names
from riverwatch.core.redis import async_redis_client

log = logging.getLogger(__name__)


@dataclass
class BrokerProbe:
    """Whether the broker answers a metadata request, cached for ``ttl_s`` seconds.

    The metadata request blocks, so it runs in a thread; concurrent callers share one probe.
    """

    kafka: KafkaConfig
    ttl_s: float = 2.0
    timeout_s: float = 2.0
    _checked_at: float = float("-inf")
    _reachable: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reachable(self) -> bool:
        """The cached answer, refreshed when older than ``ttl_s``."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.ttl_s:
                self._reachable = await asyncio.to_thread(
                    broker_reachable, self.kafka, self.timeout_s
                )
                self._checked_at = time.monotonic()
            return self._reachable


@dataclass
class Resources:
    """The context (names, the API's knobs, stores) and open clients of one running app."""

    ctx: Context
    producer: AsyncProducer
    redis: aioredis.Redis
    broker: BrokerProbe
    streams: StreamSlots
    lag: LagGate
    _scorer: SyncScorer | None = None

    @property
    def config(self) -> ApiConfig:
        """The API's knobs."""
        return self.ctx.api_config

    @property
    def names(self) -> Names:
        """The topic and key names under the app's prefix."""
        return self.ctx.names

    def sync_scorer(self) -> SyncScorer:
        """The synchronous scorer of POST /v1/score, built on first use."""
        if self._scorer is None:
            self._scorer = SyncScorer(self.ctx)
        return self._scorer

    async def close(self) -> None:
        """Flush the producer (records already accepted must reach the broker), close Redis."""
        left = await self.producer.close(self.config.produce_timeout_s)
        if left:
            log.error("%d produced records were not delivered before shutdown", left)
        await self.redis.aclose()
        await asyncio.to_thread(self.lag.close)
        if self._scorer is not None:
            self._scorer.close()


def ingest_producer(kafka: KafkaConfig, health: BrokerHealth, **overrides: Any) -> Producer:
    """The producer behind every 202: idempotent, ``acks=all`` (core.kafka.producer), and
    reporting to ``health`` so that ingest fails fast while no broker answers."""
    return producer(kafka, error_cb=health.on_error, **overrides)


def open_resources(ctx: Context) -> Resources:
    """Build the clients; they connect lazily. Raises ConfigError when an address is missing."""
    config = ctx.api_config
    redis_client = async_redis_client(ctx.redis_config, config.redis_max_connections)
    health = BrokerHealth()

    def make() -> Producer:
        return ingest_producer(ctx.kafka_config, health)

    return Resources(
        ctx=ctx,
        producer=AsyncProducer(make(), factory=make, health=health).start(),
        redis=redis_client,
        broker=BrokerProbe(ctx.kafka_config),
        streams=StreamSlots(config.max_streams, config.max_streams_per_key),
        lag=LagGate(
            ctx.kafka_config,
            config.max_lag,
            ctx.names.topic("transactions"),
            ctx.group("scorer"),
        ),
    )


async def get_resources(request: Request) -> Resources:
    """The app's resources (a FastAPI dependency); set by the lifespan.

    A coroutine so that FastAPI calls it on the event loop: a plain ``def`` dependency is run
    in the thread pool, a thread hop per request for one attribute read (issue 15:
    ``make bench-ingest``).
    """
    return resources_of(request)


def resources_of(request: Request) -> Resources:
    """The app's resources, for code that holds the request (not a dependency)."""
    resources: Resources = request.app.state.resources
    return resources
