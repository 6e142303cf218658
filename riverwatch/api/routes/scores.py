"""GET /v1/scores/{event_id}: the score the workers stored for one transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from riverwatch.api.deps import ReadKey, ResourcesDep
from riverwatch.api.schemas import Problem
from riverwatch.core.outputs import Score

router = APIRouter(prefix="/v1", tags=["scores"])


@router.get(
    "/scores/{event_id}",
    response_class=Response,
    responses={
        200: {"model": Score, "description": "The stored score."},
        401: {"model": Problem},
        403: {"model": Problem},
        404: {"model": Problem, "description": "Not scored yet, unknown, or expired."},
    },
    summary="Read the score of a transaction",
)
async def get_score(
    event_id: Annotated[str, Path(min_length=1, max_length=128)],
    key: ReadKey,
    resources: ResourcesDep,
) -> Response:
    """The Score JSON exactly as the workers stored it (kept for RIVERWATCH_SCORE_TTL_S)."""
    raw = await resources.redis.get(resources.names.score(event_id))
    if raw is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no score for event '{event_id}' yet (not scored, unknown, or expired)",
        )
    return Response(content=raw, media_type="application/json")
