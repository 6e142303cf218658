"""GET /healthz (process up), /readyz (broker, Redis, every partition scored), /metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from riverwatch.api.deps import ResourcesDep
from riverwatch.api.resources import Resources
from riverwatch.api.schemas import Readiness
from riverwatch.core.kafka import KafkaConfig, admin
from riverwatch.core.metrics import exposition
from riverwatch.core.runfiles import read_supervisor

router = APIRouter(tags=["health"])
REDIS_TIMEOUT_S = 2.0
BROKER_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


async def _redis_ok(resources: Resources) -> bool:
    try:
        return bool(await asyncio.wait_for(resources.redis.ping(), REDIS_TIMEOUT_S))
    except (RedisError, OSError, TimeoutError):
        return False


class PartitionProbe:
    """How many partitions a topic has, from a metadata request at most every ``ttl_s``
    seconds through one admin client; None while the broker does not answer.

    Readiness must see a broker go within a second, yet a caller polling /readyz in a tight
    loop must not open a client per request (that starves the workers on a small machine).
    """

    def __init__(self, kafka: KafkaConfig, topic: str, ttl_s: float = 1.0):
        self.kafka, self.topic, self.ttl_s = kafka, topic, ttl_s
        self._lock = threading.Lock()
        self._admin: AdminClient | None = None
        self._at = float("-inf")
        self._value: int | None = None

    def get(self) -> int | None:
        """The cached answer, refreshed when older than ``ttl_s`` (blocking: call in a thread)."""
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._value = self._fetch()
                self._at = time.monotonic()
            return self._value

    def _fetch(self) -> int | None:
        try:
            if self._admin is None:
                self._admin = admin(self.kafka)
            meta = self._admin.list_topics(self.topic, timeout=BROKER_TIMEOUT_S)
        except KafkaException:
            return None
        found = meta.topics.get(self.topic)
        return 0 if found is None or found.error is not None else len(found.partitions)


_PROBES: dict[tuple[str | None, str], PartitionProbe] = {}


def transactions_partitions(kafka: KafkaConfig, topic: str) -> int | None:
    """Partitions of ``topic`` on ``kafka``'s broker (cached for a second); None when the
    broker does not answer."""
    key = (kafka.bootstrap, topic)
    probe = _PROBES.get(key) or _PROBES.setdefault(key, PartitionProbe(kafka, topic))
    return probe.get()


async def fresh_workers(resources: Resources) -> dict[str, set[int]]:
    """Scorers whose heartbeat is within 3 x RIVERWATCH_WORKER_HEARTBEAT_S -> their partitions."""
    names = resources.names
    p = resources.redis.pipeline(transaction=False)
    p.hgetall(names.workers())
    p.hgetall(names.worker_partitions())
    beats, parts = await asyncio.wait_for(p.execute(), REDIS_TIMEOUT_S)
    oldest = time.time() - 3 * resources.config.heartbeat_s
    fresh: dict[str, set[int]] = {}
    for wid, value in beats.items():
        try:
            if float(value) <= oldest:
                continue
        except ValueError:
            continue  # a malformed beat is not a live worker
        owned = parts.get(wid, b"").decode()
        fresh[wid.decode()] = {int(x) for x in owned.split(",") if x.strip().isdigit()}
    return fresh


def _problems(children: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """What the supervisor of `riverwatch up` reports about children not running normally."""
    if children is None:
        return None  # not run by `up` (compose, Kubernetes): their supervisor reports
    return {
        name: {k: c.get(k) for k in ("state", "crash_looping", "exits_in_window", "restarts")}
        for name, c in children.items()
        if c.get("state") != "running" or c.get("crash_looping")
    }


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is not ready."}},
    summary="Readiness: broker and Redis answer, a live scorer owns every partition",
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """200 when the broker answers, Redis PINGs and live scorers (fresh heartbeats) own every
    ``transactions`` partition between them; else 503. The body says what is missing."""
    topic = resources.names.topic("transactions")
    total = await asyncio.to_thread(transactions_partitions, resources.ctx.kafka_config, topic)
    kafka = total is not None
    redis_ok = await _redis_ok(resources)
    workers: dict[str, set[int]] = {}
    if redis_ok and kafka:  # a scorer cut off from the broker scores nothing: count none
        try:
            workers = await fresh_workers(resources)
        except (RedisError, OSError, TimeoutError):
            redis_ok = False
    owned = set().union(*workers.values()) if workers else set()
    unowned = sorted(set(range(total)) - owned) if total is not None else None
    ready = kafka and redis_ok and bool(workers) and bool(total) and not unowned
    checks: dict[str, Any] = {
        "kafka": kafka,
        "redis": redis_ok,
        "workers": len(workers),
        "partitions": {"total": total, "unowned": unowned},
    }
    problems = _problems(read_supervisor(resources.config.data_dir))
    if problems is not None:
        checks["children"] = problems
    body = {"status": "ready" if ready else "unready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics() -> Response:
    """The Prometheus text exposition (aggregated across processes when multiprocess is on)."""
    body, content_type = exposition()
    return Response(content=body, media_type=content_type)
