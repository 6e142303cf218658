"""Redis client factory. Valkey and Redis 7 both speak this protocol."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from core.errors import ConfigError
from core.settings import Settings


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError(
            "RIVERWATCH_REDIS_URL is not set; start the embedded stack with `riverwatch up` "
            "or point it at a Redis/Valkey server"
        )
    return settings.redis_url


def redis_client(settings: Settings) -> redis.Redis:
    """A blocking client (hiredis parser when installed) for worker threads and the CLI."""
    return redis.Redis.from_url(_url(settings), socket_timeout=10, health_check_interval=30)


def async_redis_client(settings: Settings, max_connections: int | None = None) -> aioredis.Redis:
    """An asyncio client for the API and faust agents; ``max_connections`` sizes its pool.

    A sized pool waits up to 2 s for a free connection instead of failing at once: a burst
    that briefly takes every connection (many open event streams polling) must not turn the
    next ingest into a 503.
    """
    if max_connections is None:
        return aioredis.Redis.from_url(_url(settings), socket_timeout=10, health_check_interval=30)
    pool = aioredis.BlockingConnectionPool.from_url(
        _url(settings),
        max_connections=max_connections,
        timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
