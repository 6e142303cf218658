"""Bearer API keys: ``Authorization: Bearer <key>``, checked against the hashed keys in Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.resources import Resources, get_resources
from core.apikeys import SCOPES, KeyInfo, lookup_key

_bearer = HTTPBearer(auto_error=False, description="An API key created with `riverwatch keys`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require_scope(scope: str) -> Callable[..., Awaitable[KeyInfo]]:
    """A dependency that returns the caller's key info, or raises 401/403.

    401 when the header is missing, malformed or names an unknown key; 403 when the key lacks
    ``scope`` (``admin`` implies every scope).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}")

    async def authorize(
        credentials: Credentials, resources: Annotated[Resources, Depends(get_resources)]
    ) -> KeyInfo:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers=_CHALLENGE,
            )
        info = await lookup_key(resources.redis, resources.names, credentials.credentials)
        if info is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", headers=_CHALLENGE)
        if not info.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this endpoint needs the '{scope}' scope; "
                f"the key '{info.name}' has: {', '.join(info.scopes) or 'no scopes'}",
            )
        return info

    authorize.__name__ = f"require_{scope}_scope"
    return authorize
