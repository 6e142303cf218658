"""The online feature store: per-entity time-bucketed counters in Redis, one pipeline per batch.

An entity (card or terminal) is two hashes. ``Names.entity`` holds its buckets: field
``n:<bucket>`` counts transactions and ``v:<bucket>`` holds the second value (a card's amount
sum, a terminal's fraud count). ``Names.entity_days`` holds the same counters summed per day
(``n:<day>``, ``v:<day>``, day = ``bucket // per_day``), plus ``ok`` (the day totals are
complete) and ``lo`` (no day before it holds data).

Reads never bring buckets back to Python: a script sums the windows each transaction needs
where the data lives, from at most ``max(windows) + 1`` day totals and the buckets of the
four days a window boundary cuts (the current day, and the days 1, 7 and 30 before it), so a
read costs the same whatever an entity's history. Every sum is a plain addition of stored
values (no running total that subtracts what leaves a window), so the features are those of
summing the buckets (models.features.window_sums) up to the order of float additions.

Increments are commutative (HINCRBYFLOAT), so any worker may update any entity, and the
learner adds late frauds to old buckets the same way (one script, both hashes). A scored
event's own score key doubles as its "already applied" marker: the score and the counter
increments are written in one atomic script, so a replayed event is never counted twice.

State written before day totals existed (only ``Names.entity``) is migrated on its first read
or write: the script rebuilds the day totals from the buckets, once, atomically.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import redis

from core.names import Names

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
#
# Both scripts start with ARGV[1] = buckets per day, ARGV[2] = the window days (ascending, JSON),
# and share MIGRATE: day totals rebuilt from an entity's buckets when its day hash is not marked
# complete (state written before it).
_MIGRATE = """
local P = tonumber(ARGV[1])
local W = cjson.decode(ARGV[2])
local nw = #W
local maxw = W[nw]
-- an entity's state in its day hash: ok (day totals complete), lo (no data before that day),
-- q (the bucket of the cached sums), then c1.. (count, value per window)
local SF = {'ok', 'lo', 'q'}
for i = 1, 2 * nw do SF[i + 3] = 'c' .. i end
local function migrate(hk, dk)  -- dk has no 'ok': every writer sets it, so dk does not exist
  local flat = redis.call('HGETALL', hk)
  if #flat == 0 then return false end
  local tot, lo = {}, nil
  for i = 1, #flat, 2 do
    local f = flat[i]
    local d = math.floor(tonumber(string.sub(f, 3)) / P)
    local name = string.sub(f, 1, 2) .. d
    tot[name] = (tot[name] or 0) + tonumber(flat[i + 1])
    if lo == nil or d < lo then lo = d end
  end
  local args = {'ok', '1', 'lo', tostring(lo)}
  for name, v in pairs(tot) do
    args[#args + 1] = name; args[#args + 1] = string.format('%.17g', v)
  end
  redis.call('HSET', dk, unpack(args))
  local ttl = redis.call('PTTL', hk)
  if ttl > 0 then redis.call('PEXPIRE', dk, ttl) end
  return true
end
-- SF of an entity, its old state migrated first; nil for an entity with no data at all
local function state(hk, dk)
  local st = redis.call('HMGET', dk, unpack(SF))
  if st[1] then return st end
  if migrate(hk, dk) then return redis.call('HMGET', dk, unpack(SF)) end
  return nil
end
"""
# ARGV: per_day, windows, n_scores, then per entity (two keys: buckets, day totals) its number
# of query buckets and the query buckets. Returns the scores, then per query 2 * n_windows sums
# (count, value per window) as strings (%.17g: exact). The sums of an entity's last query are
# kept in its day hash (SF) and kept up to date by every write, so the next query at the same
# bucket (most transactions of a busy terminal or card) reads 7 fields.
_READ = (
    _MIGRATE
    + """
local n = tonumber(ARGV[3])
local out = {}
for i = 1, n do out[i] = redis.call('GET', KEYS[i]) or false end
-- the buckets first .. last of one day (base = its first bucket), summed
local function partial(hk, base, first, last)
  if last < first then return 0, 0 end
  local f = {}
  for b = base + first, base + last do f[#f + 1] = 'n:' .. b; f[#f + 1] = 'v:' .. b end
  local vals = redis.call('HMGET', hk, unpack(f))
  local sn, sv = 0, 0
  for j = 1, #vals, 2 do
    if vals[j] then sn = sn + tonumber(vals[j]) end
    if vals[j + 1] then sv = sv + tonumber(vals[j + 1]) end
  end
  return sn, sv
end
-- windows (qb - w * P, qb]: the day's buckets up to qb, the full days in between, and the
-- buckets after qb's hour of the day w days before
local function sums(hk, dk, qb, lo)
  local d = math.floor(qb / P)
  local h = qb - d * P
  local f = {}
  for k = 0, math.min(maxw, d - (lo or d - maxw)) do
    f[2 * k + 1] = 'n:' .. (d - k); f[2 * k + 2] = 'v:' .. (d - k)
  end
  local t = #f > 0 and redis.call('HMGET', dk, unpack(f)) or {}
  local pn, pv = 0, 0
  if t[1] or t[2] then pn, pv = partial(hk, d * P, 0, h) end
  local cn, cv, k = 0, 0, 1
  for i = 1, nw do
    local w = W[i]
    while k < w do
      if t[2 * k + 1] then cn = cn + tonumber(t[2 * k + 1]) end
      if t[2 * k + 2] then cv = cv + tonumber(t[2 * k + 2]) end
      k = k + 1
    end
    local qn, qv = 0, 0
    if t[2 * w + 1] or t[2 * w + 2] then qn, qv = partial(hk, (d - w) * P, h + 1, P - 1) end
    out[#out + 1] = string.format('%.17g', pn + cn + qn)
    out[#out + 1] = string.format('%.17g', pv + cv + qv)
  end
end
local a, k = 4, n + 1
while k <= #KEYS do
  local hk, dk = KEYS[k], KEYS[k + 1]
  k = k + 2
  local nq = tonumber(ARGV[a]); a = a + 1
  local st = state(hk, dk)
  for _ = 1, nq do
    local qb = tonumber(ARGV[a])
    if st and st[3] and tonumber(st[3]) == qb then
      for j = 4, 2 * nw + 3 do out[#out + 1] = st[j] end
    elseif st then
      sums(hk, dk, qb, tonumber(st[2]))
      local set = {'q', tostring(qb)}
      for j = 1, 2 * nw do
        set[#set + 1] = SF[j + 3]; set[#set + 1] = out[#out - 2 * nw + j]
      end
      redis.call('HSET', dk, unpack(set))
    else
      for _ = 1, 2 * nw do out[#out + 1] = '0' end
    end
    a = a + 1
  end
end
return out
"""
)
# ARGV: per_day, windows, retention, score ttl, row ttl, entities (JSON, one entry per pair of
# keys: [[bucket field, increment, ...], [day field, increment, ...], [prune before day] or [],
# [oldest day incremented] or []]), then the SETs and the stats as before. An entity's cached
# sums (see _READ) get each increment of a bucket inside their windows (additions only, as
# summing the buckets would); they are dropped when pruning deletes a day they cover.
_WRITE = (
    _MIGRATE
    + """
local retention, score_ttl, row_ttl = ARGV[3], ARGV[4], ARGV[5]
local k = 1
for _, e in ipairs(cjson.decode(ARGV[6])) do
  local hk, dk = KEYS[k], KEYS[k + 1]; k = k + 2
  local inc, days = e[1], e[2]
  -- the state and the day totals this entry adds to, in one call (then one HSET)
  local f = {unpack(SF)}
  for i = 1, #days, 2 do f[#f + 1] = days[i] end
  local st = redis.call('HMGET', dk, unpack(f))
  if not st[1] and migrate(hk, dk) then st = redis.call('HMGET', dk, unpack(f)) end
  local c = {}
  for j = 3, 2 * nw + 3 do c[j - 2] = st[j] end  -- q, c1..
  local qb = c[1] and tonumber(c[1])
  local was = tonumber(st[2] or 'none')
  local lo, gone = was, {}
  if #e[3] > 0 then  -- days before this one can never enter a window again
    local pd = e[3][1]
    if lo ~= nil then
      for day = lo, pd - 1 do
        local t = redis.call('HMGET', dk, 'n:' .. day, 'v:' .. day)
        if t[1] or t[2] then
          local f = {}
          for b = day * P, day * P + P - 1 do f[#f + 1] = 'n:' .. b; f[#f + 1] = 'v:' .. b end
          redis.call('HDEL', hk, unpack(f))
          redis.call('HDEL', dk, 'n:' .. day, 'v:' .. day)
          gone['n:' .. day] = true; gone['v:' .. day] = true
          if qb and day * P + P > qb - maxw * P and day * P <= qb then qb = false end
        end
      end
    end
    if lo ~= nil and lo < pd then lo = pd end
  end
  local changed = false
  for i = 1, #inc, 2 do
    local f, x = inc[i], inc[i + 1]
    redis.call('HINCRBYFLOAT', hk, f, x)
    local b = qb and tonumber(string.sub(f, 3))
    if b and b <= qb then
      local slot = string.byte(f) == 110 and 2 or 3  -- 110 is 'n': the count
      for j = 1, nw do
        if qb - W[j] * P < b then
          local at = 2 * j - 2 + slot
          c[at] = string.format('%.17g', tonumber(c[at]) + tonumber(x))
          changed = true
        end
      end
    end
  end
  if #e[4] > 0 and (lo == nil or e[4][1] < lo) then lo = e[4][1] end
  local set = {}
  if not st[1] then set = {'ok', '1'} end
  for i = 1, #days, 2 do  -- day totals, read above (a day pruned just now restarts at 0)
    local now = st[#SF + (i + 1) / 2]
    now = now and not gone[days[i]] and tonumber(now) or 0
    set[#set + 1] = days[i]; set[#set + 1] = string.format('%.17g', now + tonumber(days[i + 1]))
  end
  if lo ~= nil and lo ~= was then set[#set + 1] = 'lo'; set[#set + 1] = tostring(lo) end
  if c[1] and not qb then
    redis.call('HDEL', dk, unpack(SF, 3))
  elseif changed then
    for j = 2, 2 * nw + 1 do set[#set + 1] = SF[j + 2]; set[#set + 1] = c[j] end
  end
  if #set > 0 then redis.call('HSET', dk, unpack(set)) end
  redis.call('EXPIRE', hk, retention)
  redis.call('EXPIRE', dk, retention)
end
local a = 7
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
)

# One query: (kind, entity, bucket) -> the (count, value) sums of each window ending there.
Query = tuple[str, str, int]
Sums = list[tuple[float, float]]


class RedisFeatureStore:
    """Reads window sums and writes entity counters, scores and feature rows, in one round
    trip each."""

    def __init__(self, client: redis.Redis, names: Names, retention_s: int):
        self.r = client
        self.names = names
        self.retention_s = retention_s
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)

    def read(
        self,
        event_ids: list[str],
        queries: Iterable[Query],
        per_day: int,
        windows: tuple[int, ...],
    ) -> tuple[list[bytes | None], dict[Query, Sums]]:
        """Existing scores of ``event_ids`` and, per query ``(kind, entity, bucket)``, the stored
        (count, value) sums over ``(bucket - w * per_day, bucket]`` for each ``w`` of
        ``windows`` (days, ascending)."""
        per: dict[tuple[str, str], dict[int, None]] = {}
        for kind, entity, qb in queries:
            per.setdefault((kind, entity), {})[qb] = None
        keys = [self.names.score(e) for e in event_ids]
        args: list[int | bytes] = [per_day, orjson.dumps(windows), len(event_ids)]
        for (kind, entity), qbs in per.items():
            keys += [self.names.entity(kind, entity), self.names.entity_days(kind, entity)]
            args += [len(qbs), *qbs]
        res = self._read(keys=keys, args=args)
        pos, nw = len(event_ids), len(windows)
        out: dict[Query, Sums] = {}
        for (kind, entity), qbs in per.items():
            for qb in qbs:
                v = res[pos : pos + 2 * nw]
                out[(kind, entity, qb)] = [
                    (float(v[i]), float(v[i + 1])) for i in range(0, 2 * nw, 2)
                ]
                pos += 2 * nw
        return res[: len(event_ids)], out

    def _entities(
        self, inc: Increments, per_day: int, prune: dict[tuple[str, str], int]
    ) -> tuple[list[str], bytes]:
        """Keys and the JSON entity argument of :data:`_WRITE`."""
        keys: list[str] = []
        # Per entity one JSON entry: redis-py spends microseconds of Python per argument.
        # Increments travel as strings: Lua numbers would lose digits (%.14g).
        ents: list[tuple[list[str], list[str], list[int], list[int]]] = []
        prune = dict(prune)
        for kind in ("card", "terminal"):
            for entity, buckets in getattr(inc, kind).items():
                keys += [self.names.entity(kind, entity), self.names.entity_days(kind, entity)]
                ops: list[str] = []
                days: dict[int, list[float]] = {}
                for b, (n, v) in buckets.items():
                    if n:
                        ops += [f"n:{b}", repr(n)]
                    if v:
                        ops += [f"v:{b}", repr(v)]
                    day = days.setdefault(b // per_day, [0.0, 0.0])
                    day[0] += n
                    day[1] += v
                day_ops: list[str] = []
                for d, (n, v) in days.items():
                    if n:
                        day_ops += [f"n:{d}", repr(n)]
                    if v:
                        day_ops += [f"v:{d}", repr(v)]
                pd = prune.pop((kind, entity), None)
                ents.append((ops, day_ops, [] if pd is None else [pd], [min(days)] if days else []))
        for (kind, entity), pd in prune.items():  # entities read but not incremented
            keys += [self.names.entity(kind, entity), self.names.entity_days(kind, entity)]
            ents.append(([], [], [pd], []))
        return keys, orjson.dumps(ents)

    def write(
        self,
        inc: Increments,
        scores: dict[str, bytes],
        rows: dict[str, bytes],
        score_ttl_s: int,
        row_ttl_s: int,
        per_day: int,
        windows: tuple[int, ...],
        prune: dict[tuple[str, str], int] | None = None,
        stats: dict[str, dict[str, float]] | None = None,
        stats_ttl_s: int = 3600,
        client: redis.client.Pipeline | None = None,
    ) -> None:
        """Apply increments, store scores and feature rows, delete the days before
        ``prune[(kind, entity)]`` (they can never enter a window again), and add to the
        ``stats`` hashes (key -> field -> increment; for dashboards): one atomic call.

        With ``client`` (a pipeline), the call is queued there instead (the learner's MULTI).
        """
        keys, blob = self._entities(inc, per_day, prune or {})
        sets: list[bytes | str | int | float] = []
        for eid, sblob in scores.items():
            keys.append(self.names.score(eid))
            sets += ["s", sblob]
        for eid, rblob in rows.items():
            keys.append(self.names.feature_row(eid))
            sets += ["r", rblob]
        st: list[bytes | str | int | float] = [len(stats or {})]
        for key, fields in (stats or {}).items():
            keys.append(key)
            st += [stats_ttl_s, len(fields)]
            for f, v in fields.items():
                st += [f, v]
        args: list[bytes | str | int | float] = [per_day, orjson.dumps(windows), self.retention_s]
        args += [score_ttl_s, row_ttl_s, blob]
        args += [len(sets) // 2, *sets, *st]
        self._write(keys=keys, args=args, client=client)

    def get_rows(self, event_ids: list[str]) -> list[bytes | None]:
        """The stored feature rows of ``event_ids`` (None where unknown or expired)."""
        if not event_ids:
            return []
        rows = self.r.mget([self.names.feature_row(e) for e in event_ids])
        return [v.encode() if isinstance(v, str) else v for v in rows]
