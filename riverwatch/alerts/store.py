"""Alerts and webhook subscriptions in Redis, shared by the API (reads) and the dispatcher (writes).

Keys (see core.names): the alert stream ``alert_stream()`` (XADD ... MAXLEN ~; its entry ids
are the SSE event ids), dedup/cooldown markers ``alert_gate()``, the hash of subscriptions
``subscriptions()``, and per subscription a ``queue`` stream of alerts still to deliver, a
``parked`` stream of alerts no retry can send (each with its reason), a ``stats`` hash and a
worker ``lease``. An alert leaves a queue only when it was delivered or
finally failed, so a receiver that is down gets everything once it is back. A subscription's
record is :class:`riverwatch.alerts.subscription.Subscription`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from riverwatch.alerts.subscription import Subscription
from riverwatch.core.names import Names

log = logging.getLogger(__name__)
Entry = tuple[str, bytes]  # (stream entry id, alert JSON)
COUNTERS = ("delivered", "failed", "dropped", "attempts", "parked")

# Dedup, cooldown and fan-out in one atomic step: a redelivered Kafka record can never be
# stored twice, and a stored alert is always queued for every matching subscription.
_GATE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) == false then return {'duplicate'} end
local cool = tonumber(ARGV[3])
if cool > 0 then
  local prev = redis.call('GET', KEYS[2])
  if prev and tonumber(prev) >= tonumber(ARGV[4]) then return {'cooldown'} end
  redis.call('SET', KEYS[2], ARGV[4], 'PX', cool)
end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'alert', ARGV[1])
local qmax = tonumber(ARGV[6])
for i = 5, #KEYS, 2 do
  if redis.call('HEXISTS', KEYS[4], ARGV[7 + (i - 5) / 2]) == 1 then
    local over = redis.call('XLEN', KEYS[i]) - qmax + 1
    if over > 0 then
      redis.call('XTRIM', KEYS[i], 'MAXLEN', qmax - 1)
      redis.call('HINCRBY', KEYS[i + 1], 'dropped', over)
    end
    redis.call('XADD', KEYS[i], '*', 'alert', ARGV[1])
  end
end
return {'stored', id}
"""
# Move one parked alert back to the end of its queue, once (KEYS: parked, queue; ARGV: the
# parked id, the queue's cap): 'missing', 'full' or the new queue entry id.
_REQUEUE = """
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return {'missing'} end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {'full'} end
local f, alert = e[1][2], nil
for i = 1, #f, 2 do if f[i] == 'alert' then alert = f[i + 1] end end
redis.call('XDEL', KEYS[1], ARGV[1])
return {'queued', redis.call('XADD', KEYS[2], '*', 'alert', alert)}
"""
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(raw: list[Any]) -> list[Entry]:
    return [(_s(eid), fields[b"alert"]) for eid, fields in raw]


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable pair: ``"5-1"`` -> ``(5, 1)``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_age_s(entry_id: str, now: float | None = None) -> float:
    """Seconds since a stream entry was added (its id starts with the Redis clock in ms)."""
    return (time.time() if now is None else now) - int(entry_id.split("-", 1)[0]) / 1000


class AlertStore:
    """Async access to the alert stream, the subscriptions and their delivery queues."""

    def __init__(
        self,
        redis: aioredis.Redis,
        names: Names,
        stream_maxlen: int = 10_000,
        queue_maxlen: int = 100_000,
    ):
        self.r: Any = redis  # redis-py types replies as RESP2|RESP3 unions; we know the shape
        self.n = names
        self.stream_maxlen = stream_maxlen
        self.queue_maxlen = queue_maxlen
        self._gate = redis.register_script(_GATE)
        self._lease = redis.register_script(_LEASE)
        self._requeue = redis.register_script(_REQUEUE)

    # alerts ---------------------------------------------------------------------------------
    async def record(
        self,
        alert_id: str,
        cooldown_key: str,
        body: bytes,
        rank: int,
        cooldown_s: float,
        dedup_ttl_s: int,
        subscriptions: list[str],
    ) -> tuple[str, str | None]:
        """Dedup, cooldown, then store and queue for ``subscriptions``, atomically.

        Returns ``("stored", stream id)``, ``("duplicate", None)`` or ``("cooldown", None)``.
        ``rank`` is the severity rank: within the cooldown only a higher rank passes.
        """
        keys = [
            self.n.alert_gate("seen", alert_id),
            self.n.alert_gate("cool", cooldown_key),
            self.n.alert_stream(),
            self.n.subscriptions(),
        ]
        for sid in subscriptions:
            keys += [self.n.subscription(sid, "queue"), self.n.subscription(sid, "stats")]
        args: list[Any] = [body, dedup_ttl_s, int(cooldown_s * 1000), rank, self.stream_maxlen]
        res = await self._gate(keys=keys, args=[*args, self.queue_maxlen, *subscriptions])
        return _s(res[0]), (_s(res[1]) if len(res) > 1 else None)

    async def page(self, before: str | None, count: int) -> list[Entry]:
        """Up to ``count`` alerts, newest first, strictly older than entry ``before``."""
        top = f"({before}" if before else "+"
        return _entries(await self.r.xrevrange(self.n.alert_stream(), top, "-", count))

    async def after(self, last_id: str, count: int, block_ms: int | None) -> list[Entry]:
        """Alerts strictly after entry ``last_id``, waiting up to ``block_ms`` for one (None:
        answer at once, so the connection goes back to the pool)."""
        got = await self.r.xread({self.n.alert_stream(): last_id}, count, block_ms)
        return _entries(got[0][1]) if got else []

    async def last_id(self) -> str:
        """The newest entry id, or ``0-0`` when no alert was stored yet."""
        top = await self.r.xrevrange(self.n.alert_stream(), "+", "-", 1)
        return _s(top[0][0]) if top else "0-0"

    # subscriptions --------------------------------------------------------------------------
    async def add(self, sub: Subscription) -> None:
        """Store a new subscription."""
        await self.r.hset(self.n.subscriptions(), sub.id, sub.to_json())

    async def all(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        subs = []
        for sid, raw in (await self.r.hgetall(self.n.subscriptions())).items():
            try:
                subs.append(Subscription.from_json(raw))
            except (ValueError, TypeError):  # one corrupt record must not hide the others
                log.error("subscription %s is not readable and is skipped: %r", _s(sid), raw)
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    async def get(self, sub_id: str) -> Subscription | None:
        """One subscription, or None when unknown (or deleted)."""
        raw = await self.r.hget(self.n.subscriptions(), sub_id)
        return None if raw is None else Subscription.from_json(raw)

    async def delete(self, sub_id: str) -> bool:
        """Delete a subscription with its queue and stats; False when it did not exist."""
        gone = await self.r.hdel(self.n.subscriptions(), sub_id)
        parts = ("queue", "stats", "lease", "parked")
        await self.r.delete(*(self.n.subscription(sub_id, p) for p in parts))
        return bool(gone)

    async def rotate(self, sub_id: str, secret: str, overlap_s: float) -> Subscription | None:
        """Make ``secret`` the subscription's signing secret, the old one signing on for
        ``overlap_s`` seconds; the updated subscription, or None when unknown.

        Optimistic (WATCH): a concurrent change of the subscriptions is never overwritten.
        """
        key = self.n.subscriptions()
        while True:
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, sub_id)
                    if raw is None:
                        return None
                    sub = Subscription.from_json(raw).rotated(secret, time.time(), overlap_s)
                    pipe.multi()
                    pipe.hset(key, sub_id, sub.to_json())
                    await pipe.execute()
                    return sub
                except WatchError:
                    continue

    async def disable(self, sub_id: str, reason: str) -> None:
        """Mark a subscription disabled (no more deliveries); a deleted one stays deleted."""
        sub = await self.get(sub_id)
        if sub is not None:
            off = replace(sub, status="disabled", disabled_reason=reason)
            await self.r.hset(self.n.subscriptions(), sub_id, off.to_json())

    async def stats(self, sub_id: str) -> dict[str, Any]:
        """Delivery counters, the last attempt's outcome, and ``pending`` (queued alerts)."""
        raw = await self.r.hgetall(self.n.subscription(sub_id, "stats"))
        out: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
        out |= {_s(k): _s(v) for k, v in raw.items()}
        for name in COUNTERS:
            out[name] = int(out[name])
        out["pending"] = await self.r.xlen(self.n.subscription(sub_id, "queue"))
        return out

    # delivery -------------------------------------------------------------------------------
    async def pending(self, sub_id: str, count: int, block_ms: int) -> list[Entry]:
        """The oldest ``count`` queued alerts, waiting up to ``block_ms`` when there are none."""
        got = await self.r.xread({self.n.subscription(sub_id, "queue"): "0-0"}, count, block_ms)
        return _entries(got[0][1]) if got else []

    async def settle(self, sub_id: str, entry_ids: list[str], outcome: str, **note: Any) -> None:
        """Take delivered or finally failed alerts off the queue; count them; record ``note``."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xdel(self.n.subscription(sub_id, "queue"), *entry_ids)
            pipe.hincrby(self.n.subscription(sub_id, "stats"), outcome, len(entry_ids))
            if note:
                pipe.hset(self.n.subscription(sub_id, "stats"), mapping=note)
            await pipe.execute()

    async def park(self, sub_id: str, entries: list[Entry], reason: str) -> None:
        """Move alerts no retry can send from the queue to ``parked``, with the reason.

        The parked stream keeps at most the queue's length (the oldest go first, counted in
        ``stats.parked`` all the same), so a flood of bad alerts cannot grow Redis unbounded.
        """
        queue = self.n.subscription(sub_id, "queue")
        parked = self.n.subscription(sub_id, "parked")
        at = str(int(time.time()))
        async with self.r.pipeline(transaction=True) as pipe:
            for entry_id, body in entries:
                fields = {"alert": body, "reason": reason, "entry": entry_id, "at": at}
                pipe.xadd(parked, fields, maxlen=self.queue_maxlen, approximate=True)
            pipe.xdel(queue, *(e[0] for e in entries))
            pipe.hincrby(self.n.subscription(sub_id, "stats"), "parked", len(entries))
            pipe.hset(self.n.subscription(sub_id, "stats"), "last_parked_reason", reason)
            await pipe.execute()

    async def parked(self, sub_id: str, count: int = 100) -> list[dict[str, Any]]:
        """The oldest ``count`` parked alerts: ``entry``, ``alert`` (bytes), ``reason``, ``at``."""
        raw = await self.r.xrange(self.n.subscription(sub_id, "parked"), "-", "+", count)
        return [
            {"parked_id": _s(pid)} | {_s(k): (v if k == b"alert" else _s(v)) for k, v in f.items()}
            for pid, f in raw
        ]

    async def requeue(self, sub_id: str, parked_id: str) -> tuple[str, str | None]:
        """Move a parked alert back to the end of the queue (atomically, at most once).

        ``("queued", new entry id)``, ``("missing", None)`` when no such parked alert, or
        ``("full", None)`` when the queue holds its maximum.
        """
        keys = [self.n.subscription(sub_id, "parked"), self.n.subscription(sub_id, "queue")]
        res = await self._requeue(keys=keys, args=[parked_id, self.queue_maxlen])
        outcome = _s(res[0])
        return outcome, _s(res[1]) if outcome == "queued" else None

    async def note(self, sub_id: str, **fields: Any) -> None:
        """Record an attempt's outcome (``last_status``, ``last_error``, ...) and count it."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.n.subscription(sub_id, "stats"), "attempts", 1)
            pipe.hset(self.n.subscription(sub_id, "stats"), mapping=fields)
            await pipe.execute()

    async def hold_lease(self, sub_id: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the right to deliver a subscription; False when another worker has it."""
        key = self.n.subscription(sub_id, "lease")
        return bool(await self._lease(keys=[key], args=[owner, int(ttl_s * 1000)]))

    async def release_lease(self, sub_id: str, owner: str) -> None:
        """Give the lease up (on shutdown) so another worker takes over at once."""
        key = self.n.subscription(sub_id, "lease")
        if _s(await self.r.get(key) or b"") == owner:
            await self.r.delete(key)
