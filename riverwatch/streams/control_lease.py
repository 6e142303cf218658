"""Leases on control requests: one worker at a time carries out a request, and a worker whose
lease ran out changes nothing.

During a rebalance two workers may both think they own ``control`` and both resume one pending
request (streams/retrains.py); a scheduled retrain may be started by any worker with the
training role. So a request is carried out only under its lease: a Redis key
(``Names.control("lease:<request_id>")``) holding a random token, taken with SET NX PX
(:data:`LEASE_TTL_S`), renewed every third of that while the request runs, and released (only
if it still holds this token) once its outcome is acknowledged. A worker that cannot take it
leaves the request to the holder; if the holder dies, the lease runs out and the owner of
``control`` takes the request up again.

The token is also a fence: every registry change made for the request (register, promote,
rollback) runs in the registry's WATCH/MULTI transaction with the lease key watched and
compared (:meth:`Lease.check`), so a worker whose lease expired or was taken (paused longer
than the TTL, cut off from Redis) raises :class:`LeaseLost` instead of writing, and publishes
no outcome. The same transaction records the change as applied to the request
(``Names.control("applied")``, :meth:`Lease.write`): a promote or rollback carried out by a
worker that died before its outcome was out is answered from that record by the next one,
not done again, and a retrain whose challenger was registered is finished with it (promoted
if it was registered to be), not trained and registered again (removed with the pending
entry, streams/control_pending.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import redis

from riverwatch.context import Context
from riverwatch.stores.registry import Registry
from riverwatch.stores.registry_meta import Change, RedisMeta

LEASE_TTL_S = 30.0  # a lease not renewed for so long is free again
RENEW_S = LEASE_TTL_S / 3

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """This worker no longer holds the request's lease: it must not write nor answer.

    Not a RiverwatchError: it is never turned into a ``failed`` outcome."""


class Lease:
    """The lease of one request for one worker (a fresh token each time)."""

    def __init__(self, client: redis.Redis, ctx: Context, request_id: str, worker: str):
        self.r, self.ctx, self.request_id = client, ctx, request_id
        self.key = ctx.names.control(f"lease:{request_id}")
        self.k_applied = ctx.names.control("applied")
        self.token = f"{worker}:{uuid.uuid4().hex}"

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.r.set(self.key, self.token, nx=True, px=int(LEASE_TTL_S * 1000)))

    def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours."""
        ms = int(LEASE_TTL_S * 1000)
        return bool(self.r.eval(_RENEW, 1, self.key, self.token, ms))  # type: ignore[no-untyped-call]

    def held(self) -> bool:
        """True if the lease is still ours (a check, not a fence: see :meth:`check`)."""
        got: bytes | None = self.r.get(self.key)  # type: ignore[assignment]
        return got is not None and got.decode() == self.token

    def ensure(self) -> None:
        """Raise LeaseLost if the lease is known to be lost: a long task's check between its
        steps, so a retrain whose worker stopped (and let the lease go) or lost the lease ends
        there instead of training to its end. Redis unreachable: go on (the fence decides)."""
        try:
            held = self.held()
        except redis.RedisError:
            return
        if not held:
            raise LeaseLost(f"the lease of request {self.request_id} was lost")

    def release(self) -> None:
        """Let the lease go, if it is still ours."""
        self.r.eval(_RELEASE, 1, self.key, self.token)  # type: ignore[no-untyped-call]

    def check(self, p: Any) -> None:
        """In a registry transaction, while WATCHing: watch the lease too; raise if lost."""
        p.watch(self.key)
        got = p.get(self.key)
        if got is None or got.decode() != self.token:
            raise LeaseLost(f"the lease of request {self.request_id} was lost")

    def write(self, p: Any, change: Change) -> None:
        """In the same MULTI as the registry change: record it as applied to the request."""
        p.hset(self.k_applied, self.request_id, orjson.dumps(change.audit))

    def applied(self) -> dict[str, Any] | None:
        """The registry change (its audit entry) already made for this request, or None."""
        raw: bytes | None = self.r.hget(self.k_applied, self.request_id)  # type: ignore[assignment]
        return orjson.loads(raw) if raw else None

    def registry(self) -> Registry:
        """The registry whose every change is fenced by this lease."""
        meta = RedisMeta(self.r, self.ctx.names, fence=self)
        return Registry(meta, self.ctx.names, self.ctx.settings.data_dir)
