"""Event-stream authentication without the API key in a URL: short-lived stream tokens.

Browsers' EventSource cannot send an Authorization header. A client with a read key asks
``POST /v1/stream-tokens`` (Bearer key) for a token and opens the stream with ``?token=``.
A token opens event streams only (no other route takes it), for
RIVERWATCH_API_STREAM_TOKEN_TTL_S seconds; Redis keeps only its sha256, mapped to the sha256
of the key it was issued for, so revoking the key ends its tokens too. Streams also take the
usual ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from riverwatch.api.auth import Credentials, checked_key, ensure_scope
from riverwatch.api.resources import Resources, get_resources
from riverwatch.core.apikeys import KeyInfo, hash_key

TOKEN_PREFIX = "st_"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class StreamToken(BaseModel):
    """A token for ``?token=`` on the event streams."""

    token: str = Field(description="Pass as ?token= to /v1/dashboard/stream or /v1/alerts/stream.")
    expires_in: int = Field(description="Seconds it stays valid.")


def _redis_key(resources: Resources, token: str) -> str:
    return f"{resources.names.api_keys()}:stream-token:{hash_key(token)}"


async def issue(resources: Resources, key: str) -> StreamToken:
    """A new token for the API key ``key`` (already checked by the caller)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    ttl = resources.config.stream_token_ttl_s
    await resources.redis.set(_redis_key(resources, token), hash_key(key), ex=ttl)
    return StreamToken(token=token, expires_in=ttl)


async def redeem(resources: Resources, token: str) -> KeyInfo | None:
    """The key info a live token stands for; None when expired, unknown or its key revoked."""
    key_hash = await resources.redis.get(_redis_key(resources, token))
    if key_hash is None:
        return None
    raw = await resources.redis.hget(resources.names.api_keys(), key_hash)
    return None if raw is None else KeyInfo.from_json(raw)


async def stream_key(
    request: Request,
    credentials: Credentials,
    resources: Annotated[Resources, Depends(get_resources)],
    token: Annotated[
        str | None,
        Query(
            max_length=100,
            description="A stream token from POST /v1/stream-tokens, for clients that cannot "
            "send headers (EventSource); never the API key itself.",
        ),
    ] = None,
) -> KeyInfo:
    """A read-scope key from the Authorization header, or from a live stream ``token``."""
    if credentials is not None:
        return await checked_key(request, "read")
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>', or ?token= with a token "
            "from POST /v1/stream-tokens",
            headers=_CHALLENGE,
        )
    info = await redeem(resources, token)
    if info is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or expired stream token: get a new one from POST /v1/stream-tokens",
            headers=_CHALLENGE,
        )
    return ensure_scope(info, "read")
