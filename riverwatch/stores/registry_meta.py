"""Where the model registry keeps its metadata: in Redis, or in dicts for tests.

:class:`RedisMeta` keeps the hashes of versions and stages, a sequence, a stage token and an
audit list under ``Names.registry``; each stage change is one optimistic transaction
(WATCH/MULTI), optionally fenced by a writer's lease. :class:`MemoryMeta` is the same
contract in memory (unit tests, doctests). The registry itself is ``stores/registry.py``.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

import orjson
import redis

from riverwatch.core.names import Names

AUDIT_MAX = 1000
Records = dict[str, dict[str, Any]]
_UNFENCED = SimpleNamespace(check=lambda p: None, write=lambda p, change: None)


@dataclass
class Change:
    """What one stage transaction writes: the new stages, updated records, an audit entry."""

    stages: dict[str, str]
    put: Records
    audit: dict[str, Any]


Transition = Callable[[dict[str, str], Records], Change]


class MetaStore(Protocol):
    """Where the registry keeps metadata; :meth:`transact` is an atomic read-modify-write."""

    def read(self) -> tuple[dict[str, str], Records]: ...  # (stages, records), consistent
    def next_seq(self) -> int: ...
    def token(self) -> str: ...
    def audit(self, n: int) -> builtins.list[dict[str, Any]]: ...
    def transact(self, fn: Transition) -> Change: ...


def _decode(stages: dict[Any, Any], records: dict[Any, Any]) -> tuple[dict[str, str], Records]:
    text = {a.decode(): b.decode() for a, b in stages.items()}
    return text, {a.decode(): orjson.loads(b) for a, b in records.items()}


class RedisMeta:
    """The registry's metadata in Redis; ``fence``: a writer's lease (streams/control_lease.py)."""

    def __init__(self, client: redis.Redis, names: Names, fence: Any = None):
        self.r, self.fence = client, fence or _UNFENCED
        self.k = {p: names.registry(p) for p in ("versions", "stages", "seq", "token", "audit")}

    def read(self) -> tuple[dict[str, str], Records]:
        p = self.r.pipeline(transaction=True)
        p.hgetall(self.k["stages"])
        p.hgetall(self.k["versions"])
        return _decode(*p.execute())

    def next_seq(self) -> int:
        return int(self.r.incr(self.k["seq"]))

    def token(self) -> str:
        return str(int(self.r.get(self.k["token"]) or 0))  # type: ignore[arg-type]

    def audit(self, n: int) -> builtins.list[dict[str, Any]]:
        return [orjson.loads(e) for e in self.r.lrange(self.k["audit"], -n, -1)]

    def transact(self, fn: Transition) -> Change:
        k = self.k
        with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    p.watch(k["stages"], k["versions"])
                    self.fence.check(p)  # while WATCHing: may watch its key, or raise
                    change = fn(*_decode(p.hgetall(k["stages"]), p.hgetall(k["versions"])))
                    p.multi()
                    p.delete(k["stages"])
                    p.hset(k["stages"], mapping=change.stages)  # type: ignore[arg-type]
                    for name, rec in change.put.items():
                        p.hset(k["versions"], name, orjson.dumps(rec))
                    p.incr(k["token"])
                    p.rpush(k["audit"], orjson.dumps(change.audit))
                    p.ltrim(k["audit"], -AUDIT_MAX, -1)
                    self.fence.write(p, change)  # in the same MULTI
                    p.execute()
                    return change
                except redis.WatchError:  # someone changed the registry meanwhile: redo
                    continue


class MemoryMeta:
    """The registry's metadata in dicts, for unit tests and doctests (one thread only)."""

    def __init__(self) -> None:
        self.stages, self.records = dict[str, str](), Records()
        self.seq, self.tok, self.log = 0, 0, builtins.list[dict[str, Any]]()

    def read(self) -> tuple[dict[str, str], Records]:
        return dict(self.stages), copy.deepcopy(self.records)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def token(self) -> str:
        return str(self.tok)

    def audit(self, n: int) -> builtins.list[dict[str, Any]]:
        return copy.deepcopy(self.log[-n:])

    def transact(self, fn: Transition) -> Change:
        change = fn(*self.read())
        self.stages, self.tok = dict(change.stages), self.tok + 1
        self.records.update(copy.deepcopy(change.put))
        self.log = [*self.log, change.audit][-AUDIT_MAX:]
        return change
