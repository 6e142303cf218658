"""The dashboard: ``GET /`` (the page), its summary JSON and the live summary stream (SSE).

The page itself needs no key; every data call does (read scope). Browsers' EventSource cannot
send an Authorization header, so the page opens its stream with a short-lived stream token
(``POST /v1/stream-tokens``, api.streamauth) instead of putting its key in the URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from redis.exceptions import RedisError

from riverwatch.api.auth import Credentials
from riverwatch.api.deps import ReadKey, ResourcesDep, StreamKey
from riverwatch.api.resources import Resources
from riverwatch.api.schemas import Problem
from riverwatch.api.streamauth import StreamToken, issue
from riverwatch.api.streams import LimitedStream
from riverwatch.models.livestats import summarize

router = APIRouter(tags=["dashboard"])
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_WINDOW_S = 900
STREAM_EVERY_S = 1.0
# Each stream response ends after this long and the browser reconnects (``retry``): uvicorn's
# graceful shutdown waits for open responses, so an endless stream would hold it up.
STREAM_LIFETIME_S = 5.0
# The page loads its own scripts and styles only: no CDN, no inline code.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

Window = Annotated[int, Query(ge=1, le=MAX_WINDOW_S, description="Seconds to summarize.")]


def _floats(h: dict[bytes, bytes]) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in h.items()}


async def summary(resources: Resources, window: int, now: float | None = None) -> dict[str, Any]:
    """Live figures of the last ``window`` complete seconds, per-second series, models, memory.

    The current second is left out: workers are still adding to it, so it would read low.
    """
    names, r = resources.names, resources.redis
    end = int(time.time() if now is None else now)
    seconds = list(range(end - window, end))
    p = r.pipeline(transaction=False)
    for sec in seconds:
        p.hgetall(names.live(sec))
    p.hgetall(names.learner_stats())
    p.get(names.model_version("online"))
    p.hgetall(names.workers())
    *hashes, learner, online, beats = await p.execute()
    per_second = [_floats(h) for h in hashes]
    series: dict[str, list[Any]] = {"t": seconds, "scored": [], "p99_ms": []}
    for h in per_second:
        one = summarize([h], 1)
        series["scored"].append(one["scored"])
        series["p99_ms"].append(cast(dict[str, float | None], one["latency_ms"])["p99"])
    fresh_after = end - 3 * resources.config.heartbeat_s
    return {
        "now": end,
        "window_s": window,
        "live": summarize(per_second, window),
        "series": series,
        "learner": {k.decode(): int(float(v)) for k, v in learner.items()},
        "online_model": online.decode() if online else None,
        "workers": sum(1 for t in beats.values() if float(t) > fresh_after),
        "memory": await _memory(resources),
    }


async def _memory(resources: Resources) -> dict[str, int]:
    """Bytes used by the key-value server (``INFO memory``); empty when it refuses INFO."""
    try:
        info = await resources.redis.info("memory")
    except RedisError:
        return {}
    used = info.get("used_memory")
    return {"redis": int(used)} if used is not None else {}


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The dashboard page (no key needed for the HTML; it asks for one or reads ``?key=``)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get(
    "/v1/dashboard/summary",
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="Live scoring figures for the dashboard",
)
async def get_summary(key: ReadKey, resources: ResourcesDep, window: Window = 60) -> dict[str, Any]:
    """Rates, decisions, score histogram and latency over ``window`` s, a per-second series
    (scored and latency p99), learner counters, the online model version, live workers and
    the key-value server's memory."""
    return await summary(resources, window)


@router.get(
    "/v1/dashboard/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`summary` events."},
        401: {"model": Problem},
        403: {"model": Problem},
        429: {"model": Problem, "description": "Too many open streams (Retry-After)."},
    },
    summary="The dashboard summary every second (server-sent events)",
)
async def stream_summary(
    request: Request,
    key: StreamKey,
    resources: ResourcesDep,
    window: Window = 60,
) -> StreamingResponse:
    """A ``summary`` event (the JSON of /v1/dashboard/summary) every second.

    Takes a stream token as ``?token=`` too (EventSource sends no headers). A response ends
    after a few seconds and the client reconnects by itself (the ``retry`` field).
    """

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 500\n\n"
        ends = time.monotonic() + STREAM_LIFETIME_S
        while time.monotonic() < ends and not await request.is_disconnected():
            body = orjson.dumps(await summary(resources, window))
            yield b"event: summary\ndata: " + body + b"\n\n"
            await asyncio.sleep(STREAM_EVERY_S)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return LimitedStream(events(), resources.streams, key.name, headers=headers)


@router.post(
    "/v1/stream-tokens",
    response_model=StreamToken,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="A short-lived token to open event streams without the key in the URL",
)
async def post_stream_token(
    key: ReadKey, credentials: Credentials, resources: ResourcesDep
) -> StreamToken:
    """A token for ``?token=`` on ``/v1/dashboard/stream`` and ``/v1/alerts/stream``.

    It opens event streams only, for RIVERWATCH_API_STREAM_TOKEN_TTL_S seconds, as the key
    that asked for it (read scope); revoking that key ends it too.
    """
    given = credentials.credentials if credentials is not None else ""  # ReadKey checked it
    return await issue(resources, given)
