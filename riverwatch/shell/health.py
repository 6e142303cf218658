"""``riverwatch healthcheck``: the one liveness check of every container (compose, k8s, image).

Workers serve no health route, so a worker container is alive when a process of *this host*
(a container's hostname is its own) has beaten into Redis within the last three beats: the
rule ``/readyz`` counts by. Scorers beat into ``workers``, other roles into ``helpers``; a
restarted process beats under its new pid, so any fresh beat of this host counts. The API is
alive when its ``/healthz`` answers.
"""

from __future__ import annotations

import socket
import time
import urllib.request

from redis.exceptions import RedisError

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings


def worker_alive(settings: Settings, host: str | None = None, now: float | None = None) -> bool:
    """Whether a worker process of ``host`` (default: this one) beat within 3 heartbeats."""
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    try:
        p = r.pipeline(transaction=False)
        p.hgetall(names.workers())
        p.hgetall(names.helpers())
        workers, helpers = p.execute()
    except RedisError:  # no Redis, no beat to read: not known alive (the probe fails)
        return False
    finally:
        r.close()
    me = (host or socket.gethostname()).encode() + b":"
    limit = (time.time() if now is None else now) - 3 * settings.worker_heartbeat_s
    beats = {**workers, **helpers}
    return any(k.startswith(me) and float(v) > limit for k, v in beats.items())


def api_alive(settings: Settings, timeout: float = 4.0) -> bool:
    """Whether this host's API answers ``/healthz`` (on ``RIVERWATCH_API_PORT``)."""
    url = f"http://127.0.0.1:{settings.api_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as got:
            return bool(got.status == 200)
    except OSError:
        return False
