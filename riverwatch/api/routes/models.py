"""The batch-model registry over HTTP: list versions, request a retrain, promote, roll back.

Retraining is CPU-heavy and runs in the worker that owns the ``control`` topic, so
``POST /v1/models/retrain`` only produces the request (202 with its ``request_id``; the
outcome appears on ``control`` and as a ``retrain`` alert). Promotion and rollback are quick
registry transactions done here; a Control record of each is produced for the audit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Request, status
from pydantic import BaseModel, Field

from riverwatch.api.auth import AuthFirstRoute
from riverwatch.api.deps import AdminKey, ReadKey, ResourcesDep
from riverwatch.api.resources import Resources
from riverwatch.api.schemas import Problem
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.core.events import dumps, now_utc
from riverwatch.core.outputs import Control
from riverwatch.core.redis import redis_client
from riverwatch.stores.registry import ModelVersion, Registry, StageConflict, UnknownModel

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"], route_class=AuthFirstRoute)
AUTH: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 403: {"model": Problem}}


class ModelPublic(BaseModel):
    """One registered batch-model version."""

    name: str
    stage: Literal["champion", "challenger", "archived"]
    sha256: str
    created: str
    data_start: float = Field(description="Training window start (event time, epoch s).")
    data_end: float
    holdout_start: float = Field(description="Hold-out window the metrics were measured on.")
    holdout_end: float
    metrics: dict[str, float | None] = Field(description="auc, ap, cp@100 on the hold-out.")
    features: list[str]
    versions: dict[str, str] = Field(description="Library versions it was trained with.")
    previous: str | None = Field(description="The champion it replaced when promoted.")
    info: dict[str, Any] = Field(
        description="Row counts, the estimator and its parameters, and blend_weight: the "
        "batch model's weight in the combined score, fitted on the hold-out (null: the "
        "RIVERWATCH_BATCH_WEIGHT setting applies); calibration: the maps of the batch and "
        "combined scores to probabilities, fitted on the hold-out (method, out-of-fold "
        "log-loss of each candidate; null: served uncalibrated)."
    )


class ModelsOverview(BaseModel):
    """The registry at a glance."""

    champion: ModelPublic | None
    challenger: ModelPublic | None
    versions: list[ModelPublic] = Field(description="Every version, newest first.")
    audit: list[dict[str, Any]] = Field(description="Latest stage changes, oldest first.")


class RetrainAccepted(BaseModel):
    """A retrain request is on the ``control`` topic."""

    request_id: str
    status: Literal["requested"] = "requested"


class ChangeRequest(BaseModel):
    """Why (kept in the audit trail), and for a retrain an optional event time ``now``."""

    reason: Annotated[str, Field(max_length=500)] = ""
    # Strict: a JSON boolean is not an epoch (pydantic alone reads ``false`` as 0.0).
    now: Annotated[
        float | None, Field(strict=True, description="Retrain only: train as of this epoch.")
    ] = None


def _registry(request: Request, resources: Resources) -> Registry:
    # The registry is synchronous (it is shared with the workers and the CLI); one blocking
    # client per app, made on first use and called from worker threads.
    reg: Registry | None = getattr(request.app.state, "model_registry", None)
    if reg is None:
        reg = resources.ctx.registry(redis_client(resources.ctx.redis_config))
        request.app.state.model_registry = reg
    return reg


def _public(v: ModelVersion | None) -> ModelPublic | None:
    return None if v is None else ModelPublic(**v.to_dict())


async def _publish(resources: Resources, req: Control) -> None:
    topic = resources.names.topic("control")
    await resources.producer.produce(
        topic, [(req.request_id.encode(), dumps(req))], resources.config.produce_timeout_s
    )


async def _audit(resources: Resources, action: str, v: ModelVersion, reason: str) -> None:
    done = Control(
        action=action,  # type: ignore[arg-type]
        target=v.name,
        request_id=uuid.uuid4().hex,
        status="done",
        reason=reason,
        details={"champion": v.name, "previous": v.previous, "via": "api"},
        timestamp=now_utc(),
    )
    try:
        await _publish(resources, done)
    except ServiceUnavailable:  # the change is made and in the Redis audit; only the echo failed
        log.warning("%s of %s done, but its control record could not be produced", action, v.name)


@router.get("", response_model=ModelsOverview, responses=AUTH, summary="List model versions")
async def list_models(request: Request, key: ReadKey, resources: ResourcesDep) -> ModelsOverview:
    """Every version with its stage and hold-out metrics, the champion, the challenger and the
    last 50 entries of the audit trail."""
    reg = _registry(request, resources)
    versions, audit = await asyncio.to_thread(lambda: (reg.list(), reg.audit(50)))
    public = [ModelPublic(**v.to_dict()) for v in versions]
    return ModelsOverview(
        champion=next((p for p in public if p.stage == "champion"), None),
        challenger=next((p for p in public if p.stage == "challenger"), None),
        versions=public,
        audit=audit,
    )


@router.post(
    "/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RetrainAccepted,
    responses={**AUTH, 503: {"model": Problem}},
    summary="Request a retrain",
)
async def retrain(
    key: AdminKey, resources: ResourcesDep, body: Annotated[ChangeRequest | None, Body()] = None
) -> RetrainAccepted:
    """Produce a retrain request; the trainer answers on ``control`` with the same id."""
    body = body or ChangeRequest()
    req = Control(
        action="retrain",
        target="batch",
        request_id=uuid.uuid4().hex,
        reason=body.reason or f"requested through the API by key '{key.name}'",
        details={} if body.now is None else {"now": body.now},
        timestamp=now_utc(),
    )
    await _publish(resources, req)
    return RetrainAccepted(request_id=req.request_id)


@router.post(
    "/rollback",
    response_model=ModelPublic,
    responses={**AUTH, 409: {"model": Problem, "description": "No previous champion."}},
    summary="Roll back to the previous champion",
)
async def rollback(
    request: Request,
    key: AdminKey,
    resources: ResourcesDep,
    body: Annotated[ChangeRequest | None, Body()] = None,
) -> ModelPublic | None:
    """Make the champion's predecessor the champion again; the current one is archived."""
    reason = (body.reason if body else "") or f"rolled back through the API by key '{key.name}'"
    reg = _registry(request, resources)
    try:
        v = await asyncio.to_thread(reg.rollback, reason)
    except StageConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await _audit(resources, "rollback", v, reason)
    return _public(v)


@router.post(
    "/{name}/promote",
    response_model=ModelPublic,
    responses={
        **AUTH,
        404: {"model": Problem, "description": "No such version."},
        409: {"model": Problem, "description": "It already is the champion."},
    },
    summary="Promote a version to champion",
)
async def promote(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=128)],
    key: AdminKey,
    resources: ResourcesDep,
    body: Annotated[ChangeRequest | None, Body()] = None,
) -> ModelPublic | None:
    """Make ``name`` the champion now (scorers reload it within RIVERWATCH_MODEL_RELOAD_S)."""
    reason = (body.reason if body else "") or f"promoted through the API by key '{key.name}'"
    reg = _registry(request, resources)
    try:
        v = await asyncio.to_thread(reg.promote, name, reason)
    except UnknownModel as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except StageConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await _audit(resources, "promote", v, reason)
    return _public(v)
