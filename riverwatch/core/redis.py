"""Redis client factory. Valkey and Redis 7 both speak this protocol.

Every factory takes a :class:`RedisConfig`, which the composition root builds from the
``RIVERWATCH_REDIS_*`` settings (``Context.redis_config``); this module never imports the
settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis._parsers.encoders import Encoder

from riverwatch.core.errors import ConfigError
from riverwatch.core.resp import JoinPacker

# Redis refusing work for a while, whatever the record: unreachable or slow, out of memory
# (``maxmemory`` reached: OOM), a replica during a failover (READONLY), a cluster moving slots
# or without a master (TRYAGAIN, CLUSTERDOWN, MASTERDOWN). A batch waits these out and is
# retried whole (streams.batching.TRANSIENT); the API answers 503 with Retry-After. Any other
# reply error (a wrong type, a script error) is about the request itself.
UNAVAILABLE: tuple[type[redis.exceptions.RedisError], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


@dataclass(frozen=True)
class RedisConfig:
    """Where Redis is and how to reach it (``RIVERWATCH_REDIS_URL``, ``..._PASSWORD``,
    ``..._SSL_CA_FILE``, ``..._SSL_CERT_FILE``, ``..._SSL_KEY_FILE``); ``url`` None: not
    configured (a client refuses with ConfigError when made)."""

    url: str | None
    password: SecretStr | None
    ssl_ca_file: Path | None
    ssl_cert_file: Path | None
    ssl_key_file: Path | None


def _url(config: RedisConfig) -> str:
    if not config.url:
        raise ConfigError(
            "RIVERWATCH_REDIS_URL is not set; start the embedded stack with `riverwatch up` "
            "or point it at a Redis/Valkey server"
        )
    return config.url


def connection_options(config: RedisConfig) -> dict[str, Any]:
    """AUTH and TLS options for every client, on top of the URL's own.

    The password is the URL's, else RIVERWATCH_REDIS_PASSWORD; a ``rediss://`` URL speaks TLS,
    verifies the server with RIVERWATCH_REDIS_SSL_CA_FILE (or the system's CAs) and presents
    RIVERWATCH_REDIS_SSL_CERT_FILE/_KEY_FILE when set.
    """
    url = _url(config)
    opts: dict[str, Any] = {"socket_timeout": 10, "health_check_interval": 30}
    if config.password is not None and not urlsplit(url).password:
        opts["password"] = config.password.get_secret_value()
    if urlsplit(url).scheme == "rediss":
        files = {
            "ssl_ca_certs": config.ssl_ca_file,
            "ssl_certfile": config.ssl_cert_file,
            "ssl_keyfile": config.ssl_key_file,
        }
        opts |= {k: str(v) for k, v in files.items() if v is not None}
    return opts


def redis_client(config: RedisConfig) -> redis.Redis:
    """A blocking client (hiredis parser when installed) for worker threads and the CLI; its
    commands are packed by :class:`~riverwatch.core.resp.JoinPacker` (the scorer's large
    script calls)."""
    packer = JoinPacker(Encoder("utf-8", "strict", False).encode)  # redis-py's defaults
    return redis.Redis.from_url(_url(config), command_packer=packer, **connection_options(config))


def async_redis_client(config: RedisConfig, max_connections: int | None = None) -> aioredis.Redis:
    """An asyncio client for the API and faust agents; ``max_connections`` sizes its pool.

    A sized pool waits up to 2 s for a free connection instead of failing at once: a burst
    that briefly takes every connection (many open event streams polling) must not turn the
    next ingest into a 503.
    """
    if max_connections is None:
        return aioredis.Redis.from_url(_url(config), **connection_options(config))
    pool = aioredis.BlockingConnectionPool.from_url(
        _url(config), max_connections=max_connections, timeout=2, **connection_options(config)
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
