"""POST /v1/transactions, /v1/labels, /v1/metrics: validate and produce to Kafka."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from riverwatch.api.deps import IngestKey, ResourcesDep
from riverwatch.api.ingest import ingest
from riverwatch.api.schemas import IngestResult, Problem, ingest_body
from riverwatch.core.events import Label, MetricPoint, Transaction

router = APIRouter(prefix="/v1", tags=["ingest"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": IngestResult,
        "description": "Accepted records are stored in Kafka: every in-sync replica "
        "acknowledged them (acks=all).",
    },
    401: {"model": Problem, "description": "Missing or unknown API key."},
    403: {"model": Problem, "description": "The key lacks the 'ingest' scope."},
    413: {
        "model": Problem,
        "description": "The body is over RIVERWATCH_API_MAX_BODY_BYTES or holds more than "
        "RIVERWATCH_API_MAX_RECORDS records.",
    },
    422: {
        "model": IngestResult | Problem,
        "description": "Every record was bad (or, with a 'detail' body, the body is not JSON "
        "or holds no records).",
    },
    429: {
        "model": Problem,
        "description": "Transactions only: the scorers lag more than RIVERWATCH_MAX_LAG "
        "records behind; nothing was read or stored; see Retry-After.",
    },
    503: {
        "model": Problem,
        "description": "The broker does not answer or is not keeping up; see Retry-After.",
    },
}


async def _answer(request: Request, resources: ResourcesDep, topic: str) -> JSONResponse:
    outcome = await ingest(request, resources, topic)
    code = status.HTTP_202_ACCEPTED
    if outcome.accepted == 0 and outcome.rejected:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return JSONResponse(outcome.answer(), status_code=code)


@router.post(
    "/transactions",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=ingest_body(Transaction),
    summary="Ingest transactions to score",
)
async def post_transactions(
    request: Request, key: IngestKey, resources: ResourcesDep
) -> JSONResponse:
    """Produce each valid transaction to ``transactions``, keyed by card_id."""
    return await _answer(request, resources, "transactions")


@router.post(
    "/labels",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=ingest_body(Label),
    summary="Ingest ground-truth labels",
)
async def post_labels(request: Request, key: IngestKey, resources: ResourcesDep) -> JSONResponse:
    """Produce each valid label to ``labels``, keyed by event_id."""
    return await _answer(request, resources, "labels")


@router.post(
    "/metrics",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=ingest_body(MetricPoint),
    summary="Ingest metric points to forecast",
)
async def post_metrics(request: Request, key: IngestKey, resources: ResourcesDep) -> JSONResponse:
    """Produce each valid metric point to ``metrics``, keyed by series_id."""
    return await _answer(request, resources, "metrics")
