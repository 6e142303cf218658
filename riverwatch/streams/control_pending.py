"""The trainer's control requests kept in Redis: the pending ones, the ids already answered
and their outcomes.

Every request the trainer carries out (retrain, promote, rollback) is written to
``Names.control("pending")`` (``waiting`` or ``running``) by the ``control`` agent before it
moves on (so before its offset can be committed) and removed when its outcome has been
acknowledged by the broker; the worker that owns ``control`` resumes what is left
(streams/retrains.py), under the request's lease (streams/control_lease.py). Answered ids
go to ``Names.control("seen")`` (a sorted set by time, at most :data:`SEEN_MAX`, none older
than :data:`SEEN_TTL_S`) and their ``control`` outcome to ``Names.control("outcomes")`` (trimmed
with them), in one Lua script with the removal from pending: a request whose id is pending is a
duplicate and is dropped; one whose id is seen is answered again with its stored outcome (its
sender may have missed it), and not carried out again.

A scheduled retrain's period claim, its pending entry and its lease are taken in one script
(:meth:`Pending.claim`); a reset's hand-over to the learner and its id's mark as seen in one
MULTI/EXEC (:meth:`Pending.hand_over`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Literal

import orjson
import redis

from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.streams.control_lease import LEASE_TTL_S, Lease

State = Literal["waiting", "running"]
PENDING_MAX = 16  # at most so many pending; the oldest beyond are failed when resumed
SEEN_MAX = 10_000  # answered request ids remembered
SEEN_TTL_S = 7 * 86_400  # ... for at most a week

# KEYS: pending, seen, outcomes, applied; ARGV: now, oldest kept, max kept, then id, outcome...
_ANSWERED = """
local now = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  redis.call('ZADD', KEYS[2], now, ARGV[i])
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - #gone - tonumber(ARGV[3])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], #gone, #gone + over - 1)) do
    gone[#gone + 1] = id
  end
end
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
return #gone
"""
# KEYS: pending, seen; ARGV: id, entry
_PUT = """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# KEYS: claim, pending, lease; ARGV: claimer, claim ttl s, id, entry, token, lease ttl ms
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _entry(req: Control, state: State, since: float) -> bytes:
    return orjson.dumps({"state": state, "since": since, "request": req.model_dump(mode="json")})


class Pending:
    """The pending control requests, the answered request ids and their outcomes, in Redis."""

    def __init__(self, client: redis.Redis, names: Names):
        self.r, self.names = client, names
        self.k_pending = names.control("pending")
        self.k_seen = names.control("seen")
        self.k_outcomes = names.control("outcomes")
        self.k_applied = names.control("applied")

    def known(self, request_id: str) -> bool:
        """True if ``request_id`` is pending or was answered: a duplicate."""
        return self.lookup(request_id)[0] != "new"

    def lookup(self, request_id: str) -> tuple[Literal["new", "pending", "seen"], bytes | None]:
        """Whether ``request_id`` is new, pending or seen (answered); and, if seen, its stored
        ``control`` outcome (None for a reset the learner has not answered yet)."""
        with self.r.pipeline(transaction=False) as p:
            p.hexists(self.k_pending, request_id)
            p.zscore(self.k_seen, request_id)
            p.hget(self.k_outcomes, request_id)
            is_pending, seen_at, outcome = p.execute()
        if is_pending:
            return "pending", None
        return ("new", None) if seen_at is None else ("seen", outcome)

    def put(self, req: Control, state: State) -> bool:
        """Record ``req`` as pending in ``state`` (kept since its first record), unless it was
        answered (False): an answered request is never pending again."""
        old = self.r.hget(self.k_pending, req.request_id)
        since = orjson.loads(old)["since"] if old else time.time()  # type: ignore[arg-type]
        keys, entry = [self.k_pending, self.k_seen], _entry(req, state, since)
        return bool(self.r.eval(_PUT, 2, *keys, req.request_id, entry))  # type: ignore[no-untyped-call]

    def is_pending(self, request_id: str) -> bool:
        return bool(self.r.hexists(self.k_pending, request_id))

    def answered(
        self, request_ids: Sequence[str], outcomes: Mapping[str, bytes] | None = None
    ) -> None:
        """These requests' outcomes are out: no longer pending (nor their applied record),
        remembered as seen with their ``control`` outcome, in one script (never neither
        pending nor seen); the oldest beyond a week or :data:`SEEN_MAX` forgotten."""
        if not request_ids:
            return
        now, out = time.time(), outcomes or {}
        args: list[str | bytes | float] = [now, now - SEEN_TTL_S, SEEN_MAX]
        for i in request_ids:
            args += [i, out.get(i, b"")]
        keys = [self.k_pending, self.k_seen, self.k_outcomes, self.k_applied]
        self.r.eval(_ANSWERED, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    def remember(self, request_id: str, outcome: bytes) -> None:
        """Store the outcome another component published (the learner's answer to a reset)
        for an id already seen, unless one is stored."""
        if self.r.zscore(self.k_seen, request_id) is not None:
            self.r.hsetnx(self.k_outcomes, request_id, outcome)

    def claim(self, claim: str, claim_ttl_s: int, req: Control, lease: Lease) -> bool:
        """Claim a scheduled period for ``req``: the claim, ``req`` pending as ``running`` and
        its lease held by ``lease``, all in one script, or nothing if the period is claimed.

        A crash before the script leaves the period unclaimed (due again, for any worker); a
        crash after it leaves the claim with a pending entry whose lease runs out, so the
        owner of ``control`` resumes it: the period is neither lost nor trained twice.
        """
        entry = _entry(req, "running", time.time())
        ms = int(LEASE_TTL_S * 1000)
        args: list[str | bytes | int] = [lease.token, claim_ttl_s, req.request_id, entry]
        args += [lease.token, ms]
        got = self.r.eval(_CLAIM, 3, claim, self.k_pending, lease.key, *args)  # type: ignore[no-untyped-call]
        return bool(got)

    def hand_over(self, req: Control) -> None:
        """Hand a reset to the learner (``Names.learner_reset``) and mark its id seen, in one
        MULTI/EXEC: a redelivered reset is never handed over again after the learner took
        it. Its outcome is the learner's, stored when it comes by (:meth:`remember`)."""
        with self.r.pipeline() as p:
            p.hset(self.names.learner_reset(), req.request_id, req.model_dump_json())
            p.hdel(self.k_pending, req.request_id)
            p.zadd(self.k_seen, {req.request_id: time.time()})
            p.execute()

    def load(self) -> tuple[list[tuple[Control, State]], list[Control]]:
        """The pending requests to resume, running ones first, then oldest first; and those
        beyond :data:`PENDING_MAX` (the oldest), to fail. Unreadable entries are dropped."""
        raw: dict[bytes, bytes] = self.r.hgetall(self.k_pending)  # type: ignore[assignment]
        entries: list[tuple[float, Control, State]] = []
        bad: list[str] = []
        for key, value in raw.items():
            try:
                e = orjson.loads(value)
                entries.append(
                    (float(e["since"]), Control.model_validate(e["request"]), e["state"])
                )
            except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
                bad.append(key.decode())
        if bad:
            self.r.hdel(self.k_pending, *bad)
        entries.sort(key=lambda e: e[0])
        cut = max(0, len(entries) - PENDING_MAX)
        dropped = [req for _, req, _ in entries[:cut]]
        kept = sorted(entries[cut:], key=lambda e: (e[2] != "running", e[0]))
        return [(req, state) for _, req, state in kept], dropped
