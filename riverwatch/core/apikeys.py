"""API keys: stored hashed in a Redis hash, each with a name and scopes.

The hash ``Names(prefix).api_keys()`` maps ``sha256(key)`` (hex) to JSON
``{"name", "scopes", "created"}``; the key itself is shown once, when it is created, and never
stored. Scopes are ``ingest``, ``read`` and ``admin``; ``admin`` implies the others.

>>> check_scopes(["read", "ingest", "read"])
('ingest', 'read')
>>> KeyInfo("ci", ("admin",), "2024-01-01T00:00:00+00:00").allows("ingest")
True
>>> hash_key("rw_x") == hash_key("rw_x") != hash_key("rw_y")
True
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis
import redis.asyncio as aioredis

from riverwatch.core.errors import RiverwatchError
from riverwatch.core.names import Names

SCOPES = ("admin", "ingest", "read")
KEY_PREFIX = "rw_"


class InvalidScope(RiverwatchError, ValueError):
    """A key was asked for with no scope or a scope outside :data:`SCOPES`."""


@dataclass(frozen=True)
class KeyInfo:
    """What is stored about one key: its name, its scopes and when it was created (ISO 8601)."""

    name: str
    scopes: tuple[str, ...]
    created: str

    def allows(self, scope: str) -> bool:
        """True when the key holds ``scope`` or ``admin``."""
        return has_scope(self.scopes, scope)

    def to_json(self) -> bytes:
        """The JSON stored in the Redis hash."""
        return orjson.dumps(
            {"name": self.name, "scopes": list(self.scopes), "created": self.created}
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> KeyInfo:
        """Parse the stored JSON; raise ValueError when it is not a key record."""
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"not an API key record: {raw!r}")
        return cls(data["name"], tuple(data.get("scopes", ())), str(data.get("created", "")))


def hash_key(key: str) -> str:
    """The sha256 hex digest under which ``key`` is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated scopes; raise InvalidScope for an empty or unknown one."""
    wanted = {s.strip().lower() for s in scopes}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidScope(f"unknown scope {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    if not wanted:
        raise InvalidScope(f"a key needs at least one scope; choose from {', '.join(SCOPES)}")
    return tuple(sorted(wanted))


def has_scope(scopes: Iterable[str], needed: str) -> bool:
    """True when ``scopes`` holds ``needed`` or ``admin`` (which implies every scope)."""
    held = set(scopes)
    return needed in held or "admin" in held


def create_key(client: redis.Redis, names: Names, name: str, scopes: Iterable[str]) -> str:
    """Create, store and return a new key ``rw_...``; the caller must show it now (it is not kept).

    Raises InvalidScope for bad scopes and ValueError for an empty name.
    """
    if not name.strip():
        raise ValueError("a key needs a name (who or what uses it)")
    info = KeyInfo(name.strip(), check_scopes(scopes), datetime.now(UTC).isoformat())
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client.hset(names.api_keys(), hash_key(key), info.to_json())
    return key


async def lookup_key(client: aioredis.Redis, names: Names, key: str) -> KeyInfo | None:
    """The stored info of ``key``, or None when it is unknown or revoked."""
    raw = await client.hget(names.api_keys(), hash_key(key))
    return None if raw is None else KeyInfo.from_json(raw)


def revoke_key(client: redis.Redis, names: Names, key: str) -> bool:
    """Delete ``key``; True when it existed. Requests with it get 401 from then on."""
    return bool(client.hdel(names.api_keys(), hash_key(key)))


def list_keys(client: redis.Redis, names: Names) -> dict[str, KeyInfo]:
    """Every stored key as ``{sha256 hex: KeyInfo}`` (the keys themselves are not stored)."""
    raw: dict[bytes | str, bytes | str] = client.hgetall(names.api_keys())  # type: ignore[assignment]
    return {
        (h.decode() if isinstance(h, bytes) else h): KeyInfo.from_json(v) for h, v in raw.items()
    }


def revoke_name(client: redis.Redis, names: Names, name: str) -> int:
    """Delete every key called ``name`` (for when the key itself is lost); return how many."""
    hashes = [h for h, info in list_keys(client, names).items() if info.name == name]
    return int(client.hdel(names.api_keys(), *hashes)) if hashes else 0
