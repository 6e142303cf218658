"""Response bodies of the API (for OpenAPI and for clients reading it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An error a client can act on."""

    detail: str


class RecordError(BaseModel):
    """Why one record of an ingest request was rejected."""

    index: int = Field(description="0-based position of the record in the request.")
    field: str = Field(description="Dotted path of the offending field, or '(record)'.")
    reason: str
    line: int | None = Field(None, description="NDJSON only: the 1-based line of the record.")


class IngestResult(BaseModel):
    """Counts of an ingest request; every accepted record is acknowledged by the broker."""

    accepted: int
    rejected: int
    errors: list[RecordError] = Field(
        description="The first RIVERWATCH_API_MAX_ERRORS errors, by record index."
    )
    errors_omitted: int = Field(0, description="Errors not listed (beyond the first ones).")


class FieldError(BaseModel):
    """Why one field of a record is invalid."""

    field: str = Field(description="Dotted path of the offending field, or '(record)'.")
    reason: str


class InvalidRecordDetail(BaseModel):
    message: str
    errors: list[FieldError]


class InvalidRecord(BaseModel):
    """A record that breaks the contract, with every field's reason."""

    detail: InvalidRecordDetail


class Readiness(BaseModel):
    """What /readyz checked."""

    status: str
    checks: dict[str, Any] = Field(
        description="kafka: bool, redis: bool, workers: number of live scorers, partitions: "
        "{total, unowned} of `transactions` (ready only when none is unowned), children: "
        "supervised children not running normally (under `riverwatch up`)."
    )


def record_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads one record raw (not inferred)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def ingest_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an ingest route (its body is read raw, not inferred)."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": f"One {model.__name__} per line."}
                },
            },
        }
    }
