"""Shared ingest logic: read the body (bounded), parse it, validate each record, produce.

A body is one JSON object, a JSON list of objects, or NDJSON (``application/x-ndjson``, one
object per line, blank lines ignored). Good records are produced even when others are bad;
the answer lists each bad record's index (0-based, counting records), field and reason, and
for NDJSON also its line number.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
from fastapi import HTTPException, Request, status
from pydantic import BaseModel

from riverwatch.api.producer import BrokerDown
from riverwatch.api.resources import Resources
from riverwatch.context_parts import ApiConfig
from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import Label, MetricPoint, Transaction, dumps, parse_event
from riverwatch.core.limits import EventLimits
from riverwatch.core.metrics import EVENTS
from riverwatch.core.rejects import NOT_VALIDATED, prefix, reject_keys, tally

# topic -> (contract, field used as the Kafka key)
KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "transactions": (Transaction, "card_id"),
    "labels": (Label, "event_id"),
    "metrics": (MetricPoint, "series_id"),
}
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
INLINE_PARSE_BYTES = 64 * 1024  # larger bodies are parsed in a thread
_LINE = re.compile(rb"^[ \t\r\f\v]*[^\s]", re.MULTILINE)  # a line with something on it
log = logging.getLogger(__name__)
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


@dataclass
class Outcome:
    """The answer to one ingest request: counts and the first ``max_errors`` errors by index."""

    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_omitted: int = 0
    max_errors: int = 20
    # per rejected record, what it broke (core.rejects): the monitor's data-quality counters
    broken: list[set[str]] = field(default_factory=list)

    def add_error(self, error: dict[str, Any]) -> None:
        """Keep ``error`` if it is among the first ``max_errors`` by index; count it if not."""
        if len(self.errors) >= self.max_errors:
            if error["index"] >= self.errors[-1]["index"]:
                self.errors_omitted += 1
                return
            self.errors.pop()
            self.errors_omitted += 1
        bisect.insort(self.errors, error, key=lambda e: e["index"])

    def reject(self, index: int, field_: str, reason: str) -> None:
        """Count one bad record and say why."""
        self.rejected += 1
        self.add_error({"index": index, "field": field_, "reason": reason})

    def answer(self) -> dict[str, Any]:
        """The response body (api.schemas.IngestResult)."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
        }


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _type_name(value: object) -> str:
    return _JSON_TYPES.get(type(value), "null" if value is None else "a number")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; 413 when it is (or, streamed without Content-Length, grows) over limit."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the body is larger than the limit of {limit} bytes (RIVERWATCH_API_MAX_BODY_BYTES); "
        "split it into smaller requests",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _too_many(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the body holds more than {limit} records (RIVERWATCH_API_MAX_RECORDS); "
        "split it into smaller requests",
    )


def _over(body: bytes, limit: int) -> bool:
    """Whether ``body`` holds more than ``limit`` non-blank lines (counted without splitting)."""
    if body.count(b"\n") < limit:  # then it has at most ``limit`` lines
        return False
    return sum(1 for _ in islice(_LINE.finditer(body), limit + 1)) > limit


def parse_records(
    body: bytes, content_type: str, max_records: int = 10_000
) -> tuple[list[Any], list[int] | None]:
    """The records of a body and, for NDJSON, the line number of each record.

    Raises HTTPException 413 for more than ``max_records`` records (counted before they are
    parsed where the format allows), 422 naming the problem (and the line) when the body is
    not JSON.
    """
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        if _over(body, max_records):
            raise _too_many(max_records)
        records, lines = [], []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise _unprocessable(f"line {number} is not valid JSON: {exc}") from exc
            lines.append(number)
        return records, lines
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _unprocessable(
            f"the body is not valid JSON: {exc}; send an object, a list of objects, "
            "or NDJSON with 'Content-Type: application/x-ndjson'"
        ) from exc
    if isinstance(data, dict):
        return [data], None
    if isinstance(data, list):
        if len(data) > max_records:
            raise _too_many(max_records)
        return data, None
    raise _unprocessable(
        f"the body must be a JSON object or a list of objects, not {_type_name(data)}"
    )


def validate(
    topic: str, records: list[Any], outcome: Outcome, limits: EventLimits | None = None
) -> list[tuple[int, BaseModel]]:
    """The good records with their index; the bad ones are added to ``outcome``. An event time
    more than ``limits.max_future_skew_s`` ahead of the clock is refused."""
    model, _ = KINDS[topic]
    good = []
    now = time.time()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            outcome.reject(index, "(record)", f"must be a JSON object, not {_type_name(record)}")
            outcome.broken.append({prefix(topic) + NOT_VALIDATED})
            continue
        try:
            good.append((index, parse_event(model, record, limits, now)))
        except InvalidEvent as exc:
            for error in exc.errors:
                outcome.add_error({"index": index, **error})
            outcome.rejected += 1
            outcome.broken.append(reject_keys(exc, model.model_fields, topic))
    return good


def prepare(
    topic: str, body: bytes, content_type: str, config: ApiConfig, limits: EventLimits
) -> tuple[Outcome, list[int], list[tuple[bytes, bytes]], list[int] | None]:
    """Parse and validate a body within ``limits``: the outcome so far, the good records'
    indexes and wire form.

    Raises HTTPException 413 for too many records, 422 when the body is not JSON or holds no
    records.
    """
    records, lines = parse_records(body, content_type, config.max_records)
    if not records:
        raise _unprocessable("the body holds no records: send an object or a list of objects")
    outcome = Outcome(max_errors=config.max_errors)
    good = validate(topic, records, outcome, limits)
    key_field = KINDS[topic][1]
    wire = [(str(getattr(event, key_field)).encode(), dumps(event)) for _, event in good]
    return outcome, [index for index, _ in good], wire, lines


async def ingest(request: Request, resources: Resources, topic: str) -> Outcome:
    """Read, validate and produce one request's records to ``topic``; return the outcome.

    Raises HTTPException 429 (with Retry-After) for transactions while the scorers lag more
    than RIVERWATCH_MAX_LAG, 413/422 for a body that cannot be read, ServiceUnavailable when
    the broker does not take the records or answers nothing (the app answers 503 with
    Retry-After; at once, before the body is read, while no broker answers). Large bodies are
    validated in a thread so the event loop keeps answering other requests meanwhile.
    """
    config = resources.config
    # Checked before the body is read: a refused request costs no parsing and no producing.
    try:
        resources.producer.refuse_if_down()  # no broker answers: 503 at once, not after acks
        if topic == "transactions":
            await resources.lag.check()  # the scorers are too far behind: 429
    except (BrokerDown, HTTPException):
        EVENTS.labels(topic=topic, outcome="refused").inc()
        raise
    body = await read_body(request, config.max_body_bytes)
    args = (topic, body, request.headers.get("content-type", ""), config, resources.ctx.limits)
    if len(body) > INLINE_PARSE_BYTES:
        outcome, indexes, wire, lines = await asyncio.to_thread(prepare, *args)
    else:
        outcome, indexes, wire, lines = prepare(*args)
    if outcome.broken:
        await count_rejects(resources, outcome.broken, topic)
    refused = await resources.producer.produce(
        resources.names.topic(topic), wire, config.produce_timeout_s
    )
    for position, reason in refused.items():
        outcome.reject(indexes[position], "(record)", reason)
    if lines is not None:
        for error in outcome.errors:
            error["line"] = lines[error["index"]]
    outcome.accepted = len(wire) - len(refused)
    if topic == "transactions":
        resources.lag.note_accepted(outcome.accepted)
    EVENTS.labels(topic=topic, outcome="accepted").inc(outcome.accepted)
    EVENTS.labels(topic=topic, outcome="rejected").inc(outcome.rejected)
    return outcome


async def count_rejects(resources: Resources, broken: list[set[str]], topic: str) -> None:
    """Add the rejected records of ``topic`` to the monitor's data-quality counters
    (core.rejects); best effort: a Redis error is logged, the answer is not refused for it.
    (A client's retry of a body is a new request, its rejects counted again: the API cannot
    tell it from a producer that keeps sending bad records, which is what the rate shows.)"""
    key = resources.names.monitor("rejects")
    try:
        p = resources.redis.pipeline(transaction=False)
        for k, n in tally(broken, topic).items():
            p.hincrby(key, k, n)
        await p.execute()
    except Exception:  # the counters are for the monitor; the client's answer goes on
        log.exception("could not count %d rejected records of %s", len(broken), topic)
