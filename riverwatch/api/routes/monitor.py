"""GET /v1/monitor/{drift,fairness,performance,concept,actions,status}: what the monitor
stored; POST /v1/monitor/reference (admin): start a new reference now.

Before the first window closes there is nothing to show: the answer is then 200 with
``{"status": "no data yet"}`` (not 404: the resource exists, it is just empty). Until its
reference can be judged the monitor is "warming up (reference from ...)" (``/status``, and
each drift result's ``status``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, status

from riverwatch.api.deps import AdminKey, ReadKey, ResourcesDep
from riverwatch.core.events import now_utc

router = APIRouter(prefix="/v1/monitor", tags=["monitor"])
History = Annotated[int, Query(ge=0, le=1000, description="Past windows to include.")]


async def _result(resources: Any, kind: str, history: int) -> dict[str, Any]:
    names = resources.names
    p = resources.redis.pipeline(transaction=False)
    p.get(names.monitor(kind))
    p.lrange(names.monitor(f"{kind}:history"), 0, max(history, 1) - 1)
    latest, past = await p.execute()
    if latest is None:
        return {"status": "no data yet", "latest": None, "history": []}
    hist = [orjson.loads(v) for v in past[:history]]
    return {"status": "ok", "latest": orjson.loads(latest), "history": hist}


@router.get("/drift", summary="Data and prediction drift of the latest windows")
async def drift(key: ReadKey, resources: ResourcesDep, history: History = 10) -> dict[str, Any]:
    """Per-feature drift against the champion's reference and PSI/Wasserstein of scores."""
    return await _result(resources, "drift", history)


@router.get("/fairness", summary="Fairness per protected attribute of the latest windows")
async def fairness(key: ReadKey, resources: ResourcesDep, history: History = 10) -> dict[str, Any]:
    """Per-group rates, gaps and bootstrap intervals of labeled windows."""
    return await _result(resources, "fairness", history)


@router.get("/performance", summary="Realised performance and label maturity")
async def perf(key: ReadKey, resources: ResourcesDep, history: History = 10) -> dict[str, Any]:
    """AUC, AP, Card Precision@k, precision/recall per model; provisional until matured.

    ``estimated``: per judged scored window, precision and recall estimated from the scores
    before the labels (``source: "estimate"``, with intervals and the reference's estimate),
    replaced by the realised figures once its labels matured (``source: "realised"``);
    ``latest`` is the newest window, ``history`` up to ``history`` windows, newest first."""
    out = await _result(resources, "performance", history)
    out["estimated"] = await _estimates(resources, history)
    return out


async def _estimates(resources: Any, history: int) -> dict[str, Any]:
    """The stored estimate records, one per window: a realised record (stored later) replaces
    its window's estimate."""
    key = resources.names.monitor("estimate:history")
    raw = await resources.redis.lrange(key, 0, -1)  # bounded by RIVERWATCH_MONITOR_HISTORY
    latest: dict[tuple[Any, Any], dict[str, Any]] = {}
    for v in raw:  # newest first: the first record of a window is its latest
        rec = orjson.loads(v)
        latest.setdefault((rec.get("window_kind"), rec.get("window_index")), rec)
    windows = sorted(latest.values(), key=lambda r: r.get("window_end") or "", reverse=True)
    return {"latest": windows[0] if windows else None, "history": windows[:history]}


@router.get("/concept", summary="Concept drift detected on the error streams")
async def concept(key: ReadKey, resources: ResourcesDep, history: History = 10) -> dict[str, Any]:
    """The latest detections and every (model, group) detector's error estimate."""
    return await _result(resources, "concept", history)


@router.get("/actions", summary="The policy's audit trail: every control request and trigger")
async def actions(
    key: ReadKey, resources: ResourcesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Newest first: action, target, request_id, reason, trigger and window."""
    raw = await resources.redis.lrange(resources.names.monitor("actions"), 0, limit - 1)
    return {"actions": [orjson.loads(v) for v in raw]}


@router.get("/status", summary="Whether the monitor judges yet: warming up or ready")
async def monitor_status(key: ReadKey, resources: ResourcesDep) -> dict[str, Any]:
    """``{"state": "warming up" | "ready", "message", ...}``; ``"no data yet"`` before any
    scored event reached the monitor."""
    raw = await resources.redis.get(resources.names.monitor("status"))
    if raw is None:
        return {"state": "no data yet", "message": "warming up (no scored event seen yet)"}
    return orjson.loads(raw)  # type: ignore[no-any-return]


@router.post(
    "/reference",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a new monitoring reference from now",
)
async def reference(key: AdminKey, resources: ResourcesDep) -> dict[str, Any]:
    """The monitor collects a new reference from the next scored events on (after a known,
    accepted change of the traffic); until it is complete nothing is judged."""
    req = {"by": key.name, "at": now_utc().isoformat()}
    await resources.redis.set(resources.names.monitor("reference_request"), orjson.dumps(req))
    return {"status": "accepted", **req}
