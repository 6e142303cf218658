"""The OpenAPI document as the API really answers (checked by schemathesis in the tests).

FastAPI infers most of the document; :func:`install` completes what it cannot know:

- a query or header parameter is never ``null`` on the wire (FastAPI writes ``anyOf
  [..., {type: null}]`` for an optional one), so the null branch is dropped;
- every operation that checks a key answers 401 and 403 with a :class:`~api.schemas.Problem`;
- every operation that takes a body answers 400 when the body is not UTF-8 text (Starlette's
  JSON decoding) and 413 over the body limit (api.middleware);
- a 422 may be FastAPI's field list as well as the route's own body;
- the limits that are settings (the alert filters' subject caps) appear with their values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request

from riverwatch.context_parts import ApiConfig

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
# The routes whose ``subject`` filter is capped by settings.
_SUBJECT_PATHS = ("/v1/alerts", "/v1/alerts/stream")


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``{type: null}`` branch."""
    branches = schema.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


def _with_validation(response: dict[str, Any]) -> None:
    """Let a 422 be FastAPI's field list (a bad parameter) or a Problem (a route's own check)
    as well as the route's own body."""
    media = response.setdefault("content", {}).setdefault("application/json", {})
    schema = media.get("schema")
    if schema is None:
        schema = media["schema"] = _VALIDATION
    # a union FastAPI wrote (anyOf with only a title or description beside it) is flattened,
    # so the answer's schema is one list of alternatives
    union = "anyOf" in schema and set(schema) <= {"anyOf", "title", "description"}
    branches = schema["anyOf"] if union else [schema]
    added = [b for b in (_VALIDATION, _PROBLEM) if b not in branches]
    if added or (union and set(schema) != {"anyOf"}):
        media["schema"] = {"anyOf": [*branches, *added]}


def complete(doc: dict[str, Any], config: ApiConfig) -> dict[str, Any]:
    """Complete FastAPI's document ``doc`` in place (see the module doc); return it."""
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            for param in op.get("parameters", []):
                if "schema" in param:
                    param["schema"] = _not_null(param["schema"])
                if path in _SUBJECT_PATHS and param.get("name") == "subject":
                    param["schema"]["maxItems"] = config.filter_max_subjects
                    param["schema"]["items"]["maxLength"] = config.filter_max_subject_len
            if op.get("security"):
                responses.setdefault("401", _json(_PROBLEM, "Missing or unknown API key."))
                responses.setdefault("403", _json(_PROBLEM, "The key lacks the route's scope."))
            if "requestBody" in op:
                responses.setdefault("400", _json(_PROBLEM, "The body is not UTF-8 text."))
                responses.setdefault(
                    "413", _json(_PROBLEM, "The body is over RIVERWATCH_API_MAX_BODY_BYTES.")
                )
            if "422" in responses:
                _with_validation(responses["422"])
    return doc


def _allowed(doc: dict[str, Any], path: str) -> set[str]:
    """The methods ``doc`` documents for the concrete ``path`` (every template it matches: the
    router serves a method from any of them); empty when undocumented."""
    allowed: set[str] = set()
    for template, item in doc.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            allowed |= {m.upper() for m in item if m in _METHODS}
    return allowed


async def method_not_allowed(request: Request, exc: HTTPException) -> JSONResponse:
    """405 whose ``Allow`` lists every method of the path, not only the first route's.

    Starlette answers a method mismatch from the first route matching the path, so a path
    served by two routes (GET and DELETE /v1/subscriptions/{id}) named only one of them.
    """
    headers = dict(exc.headers or {})
    allowed = _allowed(request.app.openapi(), request.url.path)
    if allowed:
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)


def install(app: FastAPI, config: ApiConfig) -> None:
    """Serve the completed document and answer 405 with the full ``Allow``."""
    infer: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(infer(), config)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    default = app.exception_handlers.get(HTTPException)

    async def http_error(request: Request, exc: Exception) -> Any:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return await method_not_allowed(request, exc)
        assert default is not None
        return await default(request, exc)  # type: ignore[misc]

    app.add_exception_handler(HTTPException, http_error)
