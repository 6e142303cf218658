"""GET /healthz (process up), /readyz (broker, Redis and a worker answer), /metrics."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.deps import ResourcesDep
from api.resources import Resources
from api.schemas import Readiness
from core.metrics import exposition

router = APIRouter(tags=["health"])
REDIS_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


async def _redis_ok(resources: Resources) -> bool:
    try:
        return bool(await asyncio.wait_for(resources.redis.ping(), REDIS_TIMEOUT_S))
    except (RedisError, OSError, TimeoutError):
        return False


async def fresh_workers(resources: Resources) -> int:
    """How many workers sent a heartbeat within 3 x RIVERWATCH_WORKER_HEARTBEAT_S."""
    beats = await asyncio.wait_for(
        resources.redis.hgetall(resources.names.workers()), REDIS_TIMEOUT_S
    )
    oldest = time.time() - 3 * resources.settings.worker_heartbeat_s
    fresh = 0
    for value in beats.values():
        try:
            fresh += float(value) > oldest
        except ValueError:
            continue  # a malformed beat is not a live worker
    return fresh


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is not ready."}},
    summary="Readiness: broker, Redis and at least one worker are up",
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """200 when the broker answers, Redis PINGs and a worker heartbeat is fresh; else 503."""
    kafka = await resources.broker.reachable()
    redis_ok = await _redis_ok(resources)
    workers = 0
    if redis_ok:
        try:
            workers = await fresh_workers(resources)
        except (RedisError, OSError, TimeoutError):
            redis_ok = False
    ready = kafka and redis_ok and workers > 0
    body = {
        "status": "ready" if ready else "unready",
        "checks": {"kafka": kafka, "redis": redis_ok, "workers": workers},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics() -> Response:
    """The Prometheus text exposition (aggregated across processes when multiprocess is on)."""
    body, content_type = exposition()
    return Response(content=body, media_type=content_type)
