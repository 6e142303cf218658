"""POST /v1/score: score one transaction synchronously (read-only unless ?ingest=true)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from riverwatch.api.deps import ReadKey, ResourcesDep
from riverwatch.api.ingest import read_body
from riverwatch.api.schemas import InvalidRecord, Problem, record_body
from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import Transaction, dumps, parse_event
from riverwatch.core.outputs import Score

router = APIRouter(prefix="/v1", tags=["scores"])


@router.post(
    "/score",
    response_model=Score,
    responses={
        401: {"model": Problem},
        403: {"model": Problem},
        413: {"model": Problem, "description": "The body is over RIVERWATCH_API_MAX_BODY_BYTES."},
        422: {"model": InvalidRecord, "description": "The transaction breaks the contract."},
        503: {"model": Problem, "description": "?ingest=true and the broker did not take it."},
    },
    openapi_extra=record_body(Transaction),
    summary="Score one transaction now",
)
async def post_score(
    request: Request,
    key: ReadKey,
    resources: ResourcesDep,
    ingest: Annotated[bool, Query(description="Also ingest it (needs the ingest scope).")] = False,
) -> dict[str, Any]:
    """The score the workers would give this transaction now, from the same features and models.

    Read-only by default: the card and terminal counters are not changed. With
    ``?ingest=true`` the transaction is also produced to the ``transactions`` topic, where a
    worker scores it and applies its counters.
    """
    if ingest and not key.allows("ingest"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"?ingest=true needs the 'ingest' scope; the key '{key.name}' has: "
            + ", ".join(key.scopes),
        )
    body = await read_body(request, resources.config.max_body_bytes)
    try:
        tx = parse_event(Transaction, body, resources.ctx.limits, time.time())
    except InvalidEvent as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"message": "the transaction is invalid", "errors": exc.errors},
        ) from exc
    scorer = resources.sync_scorer()
    result = await asyncio.to_thread(scorer.score, tx)
    if ingest:
        wire = [(tx.card_id.encode(), dumps(tx))]
        topic = resources.names.topic("transactions")
        timeout = resources.config.produce_timeout_s
        refused = await resources.producer.produce(topic, wire, timeout)
        if refused:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, refused[0], headers={"Retry-After": "1"}
            )
    return result
