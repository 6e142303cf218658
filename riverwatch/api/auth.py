"""Bearer API keys: ``Authorization: Bearer <key>``, checked against the hashed keys in Redis.

Routes declare the scope they need with :func:`require_scope` (see ``api.deps``). FastAPI
reads and parses a request body before it resolves dependencies, so routers whose routes take
a body use :class:`AuthFirstRoute`: the key is checked before a byte of the body is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from riverwatch.api.resources import Resources, get_resources, resources_of
from riverwatch.core.apikeys import SCOPES, KeyInfo, lookup_key

_bearer = HTTPBearer(auto_error=False, description="An API key created with `riverwatch keys`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_CHECKED = "riverwatch_keys"  # request.state attribute: {scope: KeyInfo} already checked


async def check_key(resources: Resources, given: str | None, scope: str) -> KeyInfo:
    """The key info of ``given`` when it is a known key with ``scope``; else 401/403."""
    if not given:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers=_CHALLENGE,
        )
    info = await lookup_key(resources.redis, resources.names, given)
    if info is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", headers=_CHALLENGE)
    return ensure_scope(info, scope)


def ensure_scope(info: KeyInfo, scope: str) -> KeyInfo:
    """``info`` when its key has ``scope`` (``admin`` implies every scope); else 403."""
    if not info.allows(scope):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this endpoint needs the '{scope}' scope; "
            f"the key '{info.name}' has: {', '.join(info.scopes) or 'no scopes'}",
        )
    return info


async def checked_key(request: Request, scope: str) -> KeyInfo:
    """Check the request's key for ``scope`` once per request (remembered on its state)."""
    done: dict[str, KeyInfo] = getattr(request.state, _CHECKED, None) or {}
    if scope not in done:
        credentials = await _bearer(request)
        given = credentials.credentials if credentials is not None else None
        done[scope] = await check_key(resources_of(request), given, scope)
        setattr(request.state, _CHECKED, done)
    return done[scope]


def require_scope(scope: str) -> Callable[..., Awaitable[KeyInfo]]:
    """A dependency that returns the caller's key info, or raises 401/403.

    401 when the header is missing, malformed or names an unknown key; 403 when the key lacks
    ``scope`` (``admin`` implies every scope).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}")

    # ``_credentials`` and ``_resources`` are unused here but keep the security scheme and
    # the 401 contract in the OpenAPI document.
    async def authorize(
        request: Request,
        _credentials: Credentials,
        _resources: Annotated[Resources, Depends(get_resources)],
    ) -> KeyInfo:
        return await checked_key(request, scope)

    authorize.__name__ = f"require_{scope}_scope"
    authorize.required_scope = scope  # type: ignore[attr-defined]
    return authorize


def required_scope(dependant: Dependant) -> str | None:
    """The scope a route's dependencies require (searched depth first), or None."""
    for dep in dependant.dependencies:
        scope = getattr(dep.call, "required_scope", None) or required_scope(dep)
        if scope:
            return str(scope)
    return None


class AuthFirstRoute(APIRoute):
    """A route whose API key is checked before its body is read or parsed.

    Without it an unauthenticated client could make the API read and parse a body as large
    as RIVERWATCH_API_MAX_BODY_BYTES before its 401.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, preceded by the key check when the route takes a body."""
        handler = super().get_route_handler()
        scope = required_scope(self.dependant)
        if scope is None or self.body_field is None:
            return handler

        async def auth_first(request: Request) -> Response:
            await checked_key(request, scope)
            return await handler(request)

        return auth_first
