"""POST/GET/DELETE /v1/subscriptions: webhook subscriptions to alerts (admin scope)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from riverwatch.alerts.addresses import UnsafeURL, check_url
from riverwatch.alerts.signing import new_secret
from riverwatch.alerts.store import AlertStore
from riverwatch.alerts.subscription import Subscription
from riverwatch.api.auth import AuthFirstRoute
from riverwatch.api.deps import AdminKey, ResourcesDep
from riverwatch.api.resources import Resources
from riverwatch.api.routes.subscription_schemas import (
    ParkedAlert,
    Requeued,
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
)
from riverwatch.api.schemas import Problem
from riverwatch.core.events import now_utc

router = APIRouter(prefix="/v1", tags=["alerts"], route_class=AuthFirstRoute)
SubId = Annotated[str, Path(min_length=1, max_length=64)]
CHECK_TIMEOUT_S = 5.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _store(resources: Resources) -> AlertStore:
    return resources.ctx.alert_store(resources.redis)


async def _public(store: AlertStore, sub: Subscription) -> dict[str, Any]:
    return sub.public() | {"stats": await store.stats(sub.id)}


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionCreated,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}},
    summary="Register a webhook for alerts",
)
async def create_subscription(
    body: SubscriptionCreate, key: AdminKey, resources: ResourcesDep
) -> dict[str, Any]:
    """Store the subscription and answer with its id and signing secret (shown only now).

    422 when the URL is not http(s) or resolves to a refused address; the reason is named.
    Deliveries are signed per Standard Webhooks and start with the next matching alert.
    """
    allow = resources.config.webhook_allow_loopback
    try:
        await asyncio.wait_for(asyncio.to_thread(check_url, body.url, allow), CHECK_TIMEOUT_S)
    except UnsafeURL as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"webhook URL refused: {exc}"
        ) from exc
    except TimeoutError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"webhook URL refused: its host did not resolve within {CHECK_TIMEOUT_S:.0f} s",
        ) from exc
    sub = Subscription(
        id="sub_" + secrets.token_hex(8),
        url=body.url,
        filters=body.filters.model_dump(),
        digest_interval_s=body.digest_interval_s,
        secret=new_secret(),
        created_at=now_utc().isoformat(),
    )
    store = _store(resources)
    await store.add(sub)
    return await _public(store, sub) | {"secret": sub.secret}


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionPublic],
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="List webhook subscriptions with delivery stats",
)
async def list_subscriptions(key: AdminKey, resources: ResourcesDep) -> list[dict[str, Any]]:
    """Every subscription, oldest first, with its status and delivery stats (no secrets)."""
    store = _store(resources)
    return [await _public(store, sub) for sub in await store.all()]


@router.get(
    "/subscriptions/{sub_id}",
    response_model=SubscriptionPublic,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}},
    summary="Read one webhook subscription",
)
async def get_subscription(sub_id: SubId, key: AdminKey, resources: ResourcesDep) -> dict[str, Any]:
    """One subscription with its status and delivery stats (no secret); 404 when unknown."""
    store = _store(resources)
    sub = await store.get(sub_id)
    if sub is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription '{sub_id}'")
    return await _public(store, sub)


@router.delete(
    "/subscriptions/{sub_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}},
    summary="Delete a webhook subscription",
)
async def delete_subscription(sub_id: SubId, key: AdminKey, resources: ResourcesDep) -> Response:
    """Stop deliveries and drop the pending queue; 404 when unknown."""
    if not await _store(resources).delete(sub_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription '{sub_id}'")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/subscriptions/{sub_id}/rotate-secret",
    response_model=SecretRotated,
    responses={
        401: {"model": Problem},
        403: {"model": Problem},
        404: {"model": Problem},
        422: {"model": Problem},
    },
    summary="Rotate a webhook subscription's signing secret",
)
async def rotate_secret(
    sub_id: SubId,
    key: AdminKey,
    resources: ResourcesDep,
    overlap_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=30 * 86_400,
            description="Seconds the old secret keeps signing too; default "
            "RIVERWATCH_WEBHOOK_SECRET_OVERLAP_S (24 h). 0 drops it at once.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Give the subscription a new secret (answered only now); 404 when unknown.

    During the overlap each delivery carries two `v1,` signatures, one per secret, so a
    receiver verifies with whichever it holds while it switches to the new one.
    """
    overlap = resources.config.webhook_secret_overlap_s if overlap_s is None else overlap_s
    sub = await _store(resources).rotate(sub_id, new_secret(), overlap)
    if sub is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription '{sub_id}'")
    until = sub.previous_secret_until
    return {
        "id": sub.id,
        "secret": sub.secret,
        "previous_secret_expires_at": None if until is None else _iso(until),
    }


@router.get(
    "/subscriptions/{sub_id}/parked",
    response_model=list[ParkedAlert],
    responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}},
    summary="List a webhook subscription's parked alerts",
)
async def list_parked(
    sub_id: SubId,
    key: AdminKey,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The oldest parked alerts with the reason each could not be sent; 404 when unknown."""
    store = _store(resources)
    if await store.get(sub_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription '{sub_id}'")
    parked = await store.parked(sub_id, limit)
    return [p | {"alert": p["alert"].decode("utf-8", "replace")} for p in parked]


@router.post(
    "/subscriptions/{sub_id}/parked/{parked_id}/requeue",
    response_model=Requeued,
    responses={
        401: {"model": Problem},
        403: {"model": Problem},
        404: {"model": Problem, "description": "No such subscription or parked alert."},
        409: {"model": Problem, "description": "The queue is full; retry later."},
    },
    summary="Send a parked alert again",
)
async def requeue_parked(
    sub_id: SubId,
    parked_id: Annotated[str, Path(pattern=r"^\d{1,19}-\d{1,19}$")],
    key: AdminKey,
    resources: ResourcesDep,
) -> dict[str, Any]:
    """Put a parked alert (see ``GET .../parked``) back at the end of the queue, once: after
    the receiver or the subscription was fixed. It keeps its webhook-id, so a receiver that
    had it already drops the repeat."""
    store = _store(resources)
    if await store.get(sub_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription '{sub_id}'")
    outcome, entry = await store.requeue(sub_id, parked_id)
    if outcome == "missing":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no parked alert '{parked_id}'")
    if outcome == "full":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the subscription's queue is full (RIVERWATCH_WEBHOOK_QUEUE_MAXLEN); retry later",
        )
    return {"parked_id": parked_id, "entry": entry}
