"""The online feature store: per-entity time-bucketed counters in Redis, one pipeline per batch.

An entity (card or terminal) is one hash: field ``n:<bucket>`` counts transactions and
``v:<bucket>`` holds the second value (a card's amount sum, a terminal's fraud count).
Increments are commutative (HINCRBYFLOAT), so any worker may update any entity.
A scored event's own score key doubles as its "already applied" marker: the score and the
counter increments are written in one atomic script, so a replayed event is never counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import redis

from riverwatch.core.names import Names

Buckets = dict[int, list[float]]


def parse_hash(flat: list[bytes], prune_before: int | None = None) -> tuple[Buckets, list[bytes]]:
    """Buckets from a flat HGETALL reply ``[field, value, ...]``, plus fields older than
    ``prune_before`` (to delete).

    >>> parse_hash([b"n:5", b"2", b"v:5", b"30.5", b"n:1", b"1"], prune_before=3)
    ({5: [2.0, 30.5]}, [b'n:1'])
    """
    out: Buckets = {}
    stale: list[bytes] = []
    it = iter(flat)
    for f, v in zip(it, it, strict=True):
        bucket = int(f[2:])
        if prune_before is not None and bucket < prune_before:
            stale.append(f)
            continue
        vals = out.get(bucket)
        if vals is None:
            vals = out[bucket] = [0.0, 0.0]
        vals[f[0] != 110] = float(v)  # 110 is b"n": the count; anything else is the value
    return out, stale


@dataclass
class Increments:
    """Counter changes of one batch, summed per entity and bucket before they are written."""

    card: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    terminal: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, kind: str, entity: str, bucket: int, n: float, v: float) -> None:
        """Add ``n`` to the count and ``v`` to the second value of one bucket."""
        vals = getattr(self, kind)[entity].setdefault(bucket, [0.0, 0.0])
        vals[0] += n
        vals[1] += v


# Why Lua: redis-py spends ~10 us of Python per pipelined command, and a batch needs ~10
# commands per transaction; one script call per batch moves that loop into the server (and
# makes the write atomic). On Redis Cluster the keys of one call must share a slot, so a
# cluster deployment has to split batches by slot before calling these.
_READ = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do out[i] = redis.call('GET', KEYS[i]) or false end
for i = n + 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
"""
_WRITE = """
local retention, score_ttl, row_ttl = ARGV[1], ARGV[2], ARGV[3]
local a, k = 5, 1
for _, e in ipairs(cjson.decode(ARGV[4])) do
  local key, inc, old = KEYS[k], e[1], e[2]; k = k + 1
  for i = 1, #inc, 2 do redis.call('HINCRBYFLOAT', key, inc[i], inc[i + 1]) end
  for i = 1, #old do redis.call('HDEL', key, old[i]) end
  redis.call('EXPIRE', key, retention)
end
local n_sets = tonumber(ARGV[a]); a = a + 1
for _ = 1, n_sets do
  local ttl = ARGV[a]; a = a + 1
  redis.call('SET', KEYS[k], ARGV[a], 'EX', ttl == 's' and score_ttl or row_ttl)
  k = k + 1; a = a + 1
end
local n_stats = tonumber(ARGV[a]); a = a + 1
for _ = 1, n_stats do
  local key = KEYS[k]; k = k + 1
  local ttl = ARGV[a]; a = a + 1
  local n_f = tonumber(ARGV[a]); a = a + 1
  for _ = 1, n_f do
    redis.call('HINCRBYFLOAT', key, ARGV[a], ARGV[a + 1]); a = a + 2
  end
  redis.call('EXPIRE', key, ttl)
end
return k - 1
"""


class RedisFeatureStore:
    """Reads and writes entity buckets, scores and feature rows in one round trip each."""

    def __init__(self, client: redis.Redis, names: Names, retention_s: int):
        self.r = client
        self.names = names
        self.retention_s = retention_s
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)

    def read(
        self,
        event_ids: list[str],
        cards: Iterable[str],
        terminals: Iterable[str],
        prune_before: dict[tuple[str, str], int] | None = None,
    ) -> tuple[list[bytes | None], dict[str, Buckets], dict[str, Buckets], dict[str, list[bytes]]]:
        """Existing scores of ``event_ids`` and the buckets of each card and terminal.

        Returns (scores, card_buckets, terminal_buckets, stale) where ``stale`` maps an entity
        key to the fields older than ``prune_before[(kind, id)]``, for :meth:`write` to delete.
        """
        cards, terminals = list(cards), list(terminals)
        keys = [self.names.score(e) for e in event_ids]
        keys += [self.names.entity("card", c) for c in cards]
        keys += [self.names.entity("terminal", t) for t in terminals]
        res = self._read(keys=keys, args=[len(event_ids)])
        scores = res[: len(event_ids)]
        prune_before = prune_before or {}
        stale: dict[str, list[bytes]] = {}
        out: list[dict[str, Buckets]] = [{}, {}]
        pos = len(event_ids)
        for slot, (kind, ids) in enumerate((("card", cards), ("terminal", terminals))):
            for eid in ids:
                buckets, old = parse_hash(res[pos], prune_before.get((kind, eid)))
                out[slot][eid] = buckets
                if old:
                    stale[keys[pos]] = old
                pos += 1
        return scores, out[0], out[1], stale

    def write(
        self,
        inc: Increments,
        scores: dict[str, bytes],
        rows: dict[str, bytes],
        score_ttl_s: int,
        row_ttl_s: int,
        stale: dict[str, list[bytes]] | None = None,
        stats: dict[str, dict[str, float]] | None = None,
        stats_ttl_s: int = 3600,
    ) -> None:
        """Apply increments, store scores and feature rows, prune stale fields, and add to the
        ``stats`` hashes (key -> field -> increment; for dashboards): one atomic call."""
        stale = dict(stale or {})
        keys: list[str] = []
        # Per entity [[field, increment, ...], [stale field, ...]], as one JSON argument: redis-py
        # spends microseconds of Python per argument, and these were ~14 per transaction.
        # Increments travel as strings: Lua numbers would lose digits (%.14g).
        ents: list[tuple[list[str], list[str]]] = []
        for kind in ("card", "terminal"):
            for entity, buckets in getattr(inc, kind).items():
                key = self.names.entity(kind, entity)
                keys.append(key)
                ops: list[str] = []
                for b, (n, v) in buckets.items():
                    if n:
                        ops += [f"n:{b}", repr(n)]
                    if v:
                        ops += [f"v:{b}", repr(v)]
                ents.append((ops, [f.decode() for f in stale.pop(key, [])]))
        for key, old in stale.items():  # entities read but not incremented in this batch
            keys.append(key)
            ents.append(([], [f.decode() for f in old]))
        sets: list[bytes | str | int | float] = []
        for eid, blob in scores.items():
            keys.append(self.names.score(eid))
            sets += ["s", blob]
        for eid, blob in rows.items():
            keys.append(self.names.feature_row(eid))
            sets += ["r", blob]
        st: list[bytes | str | int | float] = [len(stats or {})]
        for key, fields in (stats or {}).items():
            keys.append(key)
            st += [stats_ttl_s, len(fields)]
            for f, v in fields.items():
                st += [f, v]
        blob = orjson.dumps(ents)
        args = [self.retention_s, score_ttl_s, row_ttl_s, blob, len(sets) // 2, *sets, *st]
        self._write(keys=keys, args=args)

    def get_rows(self, event_ids: list[str]) -> list[bytes | None]:
        """The stored feature rows of ``event_ids`` (None where unknown or expired)."""
        if not event_ids:
            return []
        rows = self.r.mget([self.names.feature_row(e) for e in event_ids])
        return [v.encode() if isinstance(v, str) else v for v in rows]
