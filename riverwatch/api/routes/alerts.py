"""GET /v1/alerts (history with filters) and GET /v1/alerts/stream (server-sent events).

Both read the Redis stream the dispatcher writes (alerts.store); an alert's ``id`` is its
stream entry id, which is also its SSE event id, so a client resumes with ``Last-Event-ID``.

Limits: at most RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS subject patterns of
RIVERWATCH_ALERT_FILTER_MAX_SUBJECT_LEN characters (422 beyond, before any alert is read), and
the history filter runs in a worker thread, so a costly filter never holds the event loop.
An open stream polls Redis and holds no pooled connection between polls; streams are capped
per key and overall (api.streams).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from riverwatch.alerts.rules import Filters
from riverwatch.api.deps import ReadKey, ResourcesDep, StreamKey
from riverwatch.api.routes.subscription_schemas import Kind
from riverwatch.api.schemas import Problem
from riverwatch.api.streams import LimitedStream
from riverwatch.core.outputs import Alert, Severity

router = APIRouter(prefix="/v1", tags=["alerts"])
# At most 19 digits a part: every such number fits the 64 bits of a Redis stream id part.
STREAM_ID = r"^\d{1,19}(-\d{1,19})?$"
SCAN_CHUNK = 500
SSE_BATCH = 100


def _iso_only(value: object) -> object:
    """Refuse an epoch number (pydantic reads ``0.5`` as a time): the filter takes ISO 8601."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date or date-time, e.g. 2026-01-02T00:00:00Z")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# A date (midnight UTC) or a date-time; a time without a zone is UTC.
TimeQ = Annotated[
    datetime | None,
    BeforeValidator(_iso_only),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
    ),
]
KindQ = Annotated[list[Kind] | None, Query(description="Only these kinds (repeatable).")]
MinSeverityQ = Annotated[Severity | None, Query(description="This severity and above.")]
SubjectQ = Annotated[
    list[Annotated[str, Field(min_length=1)]] | None,
    Query(
        description="Exact subjects or fnmatch patterns (repeatable; at most "
        "RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS of RIVERWATCH_ALERT_FILTER_MAX_SUBJECT_LEN "
        "characters)."
    ),
]


def capped_subjects(resources: ResourcesDep, subject: SubjectQ = None) -> list[str] | None:
    """The subject filter, refused (422) over the settings' caps before any alert is read."""
    if not subject:
        return subject
    config = resources.config
    if len(subject) > config.filter_max_subjects:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"at most {config.filter_max_subjects} subject patterns "
            "(RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS)",
        )
    if max(map(len, subject)) > config.filter_max_subject_len:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"a subject pattern has at most {config.filter_max_subject_len} characters "
            "(RIVERWATCH_ALERT_FILTER_MAX_SUBJECT_LEN)",
        )
    return subject


Subjects = Annotated[list[str] | None, Depends(capped_subjects)]


class AlertEntry(Alert):
    """An alert as stored, with its stream id."""

    id: str = Field(description="Stream entry id: the SSE event id, and the `before` cursor.")


class AlertPage(BaseModel):
    """Alerts newest first, and the cursor of the next (older) page."""

    items: list[AlertEntry]
    next_before: str | None = Field(description="Pass as ?before= for older alerts; null: no more.")


def _filters(
    kind: Sequence[str] | None, min_severity: str | None, subject: Sequence[str] | None
) -> Filters:
    return Filters.from_dict({"kinds": kind, "min_severity": min_severity, "subjects": subject})


def _in_time(since: datetime | None, until: datetime | None) -> Callable[[dict[str, Any]], bool]:
    if since is None and until is None:
        return lambda _a: True
    # A time without a zone is UTC, as everywhere in riverwatch.
    since, until = (t.replace(tzinfo=UTC) if t and t.tzinfo is None else t for t in (since, until))

    def check(a: dict[str, Any]) -> bool:
        ts = datetime.fromisoformat(a["timestamp"])
        return (since is None or ts >= since) and (until is None or ts < until)

    return check


def _select(
    chunk: list[tuple[str, bytes]],
    wanted: Filters,
    severity: Sequence[str] | None,
    in_time: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    """The alerts of ``chunk`` (newest first) that pass every filter, with their ids."""
    out = []
    for eid, raw in chunk:
        a = orjson.loads(raw)
        if (
            wanted.matches(a["kind"], a["severity"], a["subject"])
            and (not severity or a["severity"] in severity)
            and in_time(a)
        ):
            out.append(a | {"id": eid})
    return out


@router.get(
    "/alerts",
    response_model=AlertPage,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="Alert history with filters",
)
async def list_alerts(
    key: ReadKey,
    resources: ResourcesDep,
    subject: Subjects,
    kind: KindQ = None,
    severity: Annotated[
        list[Severity] | None, Query(description="Only these severities (repeatable).")
    ] = None,
    min_severity: MinSeverityQ = None,
    since: Annotated[TimeQ, Query(description="Alert time at or after.")] = None,
    until: Annotated[TimeQ, Query(description="Alert time before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None, Query(pattern=STREAM_ID, description="Only alerts older than this id.")
    ] = None,
) -> dict[str, Any]:
    """Delivered alerts (deduplicated, after cooldown), newest first, filtered.

    ``since``/``until`` compare the alert's own timestamp. History is bounded by
    RIVERWATCH_ALERT_STREAM_MAXLEN; page with ``before`` = the previous page's ``next_before``.
    """
    store = resources.ctx.alert_store(resources.redis)
    wanted, in_time = _filters(kind, min_severity, subject), _in_time(since, until)
    items: list[dict[str, Any]] = []
    cursor = before
    while len(items) < limit:
        chunk = await store.page(cursor, SCAN_CHUNK)
        # Up to RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS fnmatch patterns per alert: a worker
        # thread's work, not the loop's.
        found = await run_in_threadpool(_select, chunk, wanted, severity, in_time)
        for a in found:
            items.append(a)
            if len(items) == limit:
                return {"items": items, "next_before": a["id"]}
        if len(chunk) < SCAN_CHUNK:
            return {"items": items, "next_before": None}
        cursor = chunk[-1][0]
    return {"items": items, "next_before": None}


@router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: alert` events."},
        401: {"model": Problem},
        403: {"model": Problem},
        429: {"model": Problem, "description": "Too many open streams (Retry-After)."},
    },
    summary="Live alerts as server-sent events",
)
async def stream_alerts(
    key: StreamKey,
    resources: ResourcesDep,
    subject: Subjects,
    kind: KindQ = None,
    min_severity: MinSeverityQ = None,
    last_event_id: Annotated[
        str | None,
        Header(pattern=STREAM_ID, description="Resume right after this event id."),
    ] = None,
) -> StreamingResponse:
    """Alerts as they are stored: ``id: <stream id>``, ``event: alert``, ``data: <Alert JSON>``.

    Without ``Last-Event-ID`` the stream starts with the next alert; with it, right after that
    id, so a reconnecting client misses nothing still in the history. Comment lines
    (``: keep-alive``) every RIVERWATCH_ALERT_SSE_HEARTBEAT_S keep proxies from closing it.
    """
    store = resources.ctx.alert_store(resources.redis)
    wanted = _filters(kind, min_severity, subject)
    start = last_event_id or await store.last_id()  # fixed now: nothing slips in before we read
    heartbeat = resources.config.sse_heartbeat_s
    poll_s = resources.config.sse_poll_s

    ends = time.monotonic() + resources.config.sse_max_s

    async def events() -> AsyncIterator[bytes]:
        # The id line sets the client's Last-Event-ID before any alert: when this response
        # ends (RIVERWATCH_ALERT_SSE_MAX_S) the reconnect resumes here and misses nothing.
        yield b"retry: 2000\nid: %s\n: connected\n\n" % start.encode()
        last, wrote = start, time.monotonic()
        while time.monotonic() < ends:
            # A read that does not block: the connection goes back to the pool at once, so
            # open streams never use up the pool that ingest and key checks need.
            batch = await store.after(last, SSE_BATCH, None)
            for eid, raw in batch:
                last = eid
                a = orjson.loads(raw)
                if wanted.matches(a["kind"], a["severity"], a["subject"]):
                    yield b"id: %s\nevent: alert\ndata: %s\n\n" % (eid.encode(), raw)
                    wrote = time.monotonic()
            if time.monotonic() - wrote >= heartbeat:
                yield b": keep-alive\n\n"
                wrote = time.monotonic()
            if len(batch) < SSE_BATCH:
                await asyncio.sleep(min(poll_s, heartbeat))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return LimitedStream(events(), resources.streams, key.name, headers=headers)
