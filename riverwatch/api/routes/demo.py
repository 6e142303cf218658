"""GET /v1/demo: where the demo of `riverwatch up --demo` is (shell.demo keeps it)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from riverwatch.api.deps import ReadKey, ResourcesDep
from riverwatch.api.schemas import Problem

router = APIRouter(tags=["demo"])


@router.get(
    "/v1/demo",
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="The demo's phase: warming up, calm, drift injected, drift alert, retrain, recovered",
)
async def demo_status(key: ReadKey, resources: ResourcesDep) -> dict[str, Any]:
    """``{"phase", "message", "event_day", "episode", "steps", ...}`` while `up --demo` runs
    (the steps so far, each with its time); ``{"phase": "off"}`` without a demo."""
    raw = await resources.redis.get(resources.names.demo())
    if raw is None:
        return {"phase": "off", "message": "no demo running", "steps": []}
    return orjson.loads(raw)  # type: ignore[no-any-return]
