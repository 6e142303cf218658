"""The trainer's control requests kept in Redis: the pending ones and the ids already answered.

A retrain request is written to ``Names.control("pending")`` (``waiting`` or ``running``) by
the ``control`` agent before it moves on (so before its offset can be committed) and removed
when its outcome has been acknowledged by the broker; the worker that owns ``control`` next
resumes what is left (streams/roles/training.py). Answered ids go to ``Names.control("seen")``
(a sorted set by time, at most :data:`SEEN_MAX`, none older than :data:`SEEN_TTL_S`): a
request whose id is pending or seen is a duplicate (the monitor re-sends a request whose
record the broker did not confirm) and is not carried out again.

One worker owns ``control`` (one partition), so these keys have one writer at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import orjson
import redis

from riverwatch.core.names import Names
from riverwatch.core.outputs import Control

State = Literal["waiting", "running"]
PENDING_MAX = 16  # at most so many pending; the oldest beyond are failed when resumed
SEEN_MAX = 10_000  # answered request ids remembered
SEEN_TTL_S = 7 * 86_400  # ... for at most a week


class Pending:
    """The pending retrain requests and the answered request ids, in Redis."""

    def __init__(self, client: redis.Redis, names: Names):
        self.r = client
        self.k_pending = names.control("pending")
        self.k_seen = names.control("seen")

    def known(self, request_id: str) -> bool:
        """True if ``request_id`` is pending or was answered: a duplicate."""
        with self.r.pipeline(transaction=False) as p:
            p.hexists(self.k_pending, request_id)
            p.zscore(self.k_seen, request_id)
            is_pending, seen_at = p.execute()
        return bool(is_pending) or seen_at is not None

    def put(self, req: Control, state: State) -> None:
        """Record ``req`` as pending in ``state`` (kept since its first record)."""
        old = self.r.hget(self.k_pending, req.request_id)
        since = orjson.loads(old)["since"] if old else time.time()  # type: ignore[arg-type]
        entry = {"state": state, "since": since, "request": req.model_dump(mode="json")}
        self.r.hset(self.k_pending, req.request_id, orjson.dumps(entry))

    def answered(self, request_ids: Sequence[str]) -> None:
        """These requests' outcomes are out: no longer pending, remembered as seen."""
        if not request_ids:
            return
        now = time.time()
        with self.r.pipeline() as p:  # MULTI/EXEC: never neither pending nor seen
            p.hdel(self.k_pending, *request_ids)
            p.zadd(self.k_seen, {i: now for i in request_ids})
            p.zremrangebyscore(self.k_seen, "-inf", now - SEEN_TTL_S)
            p.zremrangebyrank(self.k_seen, 0, -SEEN_MAX - 1)
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
