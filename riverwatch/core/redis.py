"""Redis client factory. Valkey and Redis 7 both speak this protocol."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis

from riverwatch.core.errors import ConfigError
from riverwatch.core.settings import Settings


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError(
            "RIVERWATCH_REDIS_URL is not set; start the embedded stack with `riverwatch up` "
            "or point it at a Redis/Valkey server"
        )
    return settings.redis_url


def connection_options(settings: Settings) -> dict[str, Any]:
    """AUTH and TLS options for every client, on top of the URL's own.

    The password is the URL's, else RIVERWATCH_REDIS_PASSWORD; a ``rediss://`` URL speaks TLS,
    verifies the server with RIVERWATCH_REDIS_SSL_CA_FILE (or the system's CAs) and presents
    RIVERWATCH_REDIS_SSL_CERT_FILE/_KEY_FILE when set.
    """
    url = _url(settings)
    opts: dict[str, Any] = {"socket_timeout": 10, "health_check_interval": 30}
    if settings.redis_password is not None and not urlsplit(url).password:
        opts["password"] = settings.redis_password.get_secret_value()
    if urlsplit(url).scheme == "rediss":
        files = {
            "ssl_ca_certs": settings.redis_ssl_ca_file,
            "ssl_certfile": settings.redis_ssl_cert_file,
            "ssl_keyfile": settings.redis_ssl_key_file,
        }
        opts |= {k: str(v) for k, v in files.items() if v is not None}
    return opts


def redis_client(settings: Settings) -> redis.Redis:
    """A blocking client (hiredis parser when installed) for worker threads and the CLI."""
    return redis.Redis.from_url(_url(settings), **connection_options(settings))


def async_redis_client(settings: Settings, max_connections: int | None = None) -> aioredis.Redis:
    """An asyncio client for the API and faust agents; ``max_connections`` sizes its pool.

    A sized pool waits up to 2 s for a free connection instead of failing at once: a burst
    that briefly takes every connection (many open event streams polling) must not turn the
    next ingest into a 503.
    """
    if max_connections is None:
        return aioredis.Redis.from_url(_url(settings), **connection_options(settings))
    pool = aioredis.BlockingConnectionPool.from_url(
        _url(settings), max_connections=max_connections, timeout=2, **connection_options(settings)
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
