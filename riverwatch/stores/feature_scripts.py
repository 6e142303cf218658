"""The feature store's write script (stores.features): counters, maximums, scores, stats.

The read script is in stores.feature_read, the code both scripts start with in
stores.feature_state (split to keep each module short). The layout they keep is described in
stores.features and docs/architecture.md ("Feature store layout").
"""

from riverwatch.stores.feature_read import READ
from riverwatch.stores.feature_state import MIGRATE

__all__ = ["READ", "WRITE"]

# ARGV: per_day, windows, key bases, retention, score ttl, row ttl, entities (one flat JSON
# array; per entity its id, 1 if a card (else a terminal), its number of buckets incremented
# and per bucket four items: the bucket, the count's increment (a number), the value's (a
# string: Lua numbers would lose digits, %.14g) and the candidate maximum (a string), each 0
# for none; then the day to prune before, as a list: its length and items), then the scores
# and the rows (each: their event ids as a JSON array, then the values), then the stats (KEYS:
# one hash each; ttl, number of fields, field, increment, ...). The script builds the entity,
# score and row keys (feature_read's header), the field names, and each day's totals and first
# and last bucket from the buckets (a day's sums added in the buckets' order, as doubles, as the
# Python before it did). Flat, because cjson builds a Lua table per nested list, and five per
# entity cost Valkey more than the rest of the decoding (a batch of 500 events: ~8 us of its
# CPU per event). An entity's cached sums (see READ) get each increment of a bucket inside
# their windows (additions only, as summing the buckets would; a maximum field, m:, is kept
# where larger, HGET then HSET, and raises the cached maximums the same way), unpacked and
# packed again once per entity; they are dropped when pruning deletes a day they cover.
WRITE = (
    MIGRATE
    + """
local retention, score_ttl, row_ttl = ARGV[4], ARGV[5], ARGV[6]
local E, p = cjson.decode(ARGV[7]), 1
while p <= #E do
  local hk, dk = keys_of(E[p + 1], E[p]); p = p + 2
  local q0, q1 = p + 1, p + 4 * E[p]; p = q1 + 1
  local pd = E[p] > 0 and E[p + 1] or nil; p = p + 1 + E[p]
  -- from the buckets: the increments I (field, increment, ...), the days in first-seen order
  -- with their totals (count, value: sums; the largest maximum) and the first and last bucket
  -- of each incremented
  local I, days, tot, od, newest = {}, {}, {}, nil, nil
  for q = q0, q1, 4 do
    local b, n, v, m = E[q], E[q + 1], E[q + 2], E[q + 3]
    if newest == nil or b > newest then newest = b end
    local d = math.floor(b / P)
    local t = tot[d]
    if not t then
      t = {0, 0, 0, P, -1, 0}; tot[d] = t; days[#days + 1] = d
      if od == nil or d < od then od = d end
    end
    if n ~= 0 then I[#I + 1] = 'n:' .. b; I[#I + 1] = n; t[1] = t[1] + n end
    if v ~= 0 then I[#I + 1] = 'v:' .. b; I[#I + 1] = v; t[2] = t[2] + tonumber(v) end
    if m ~= 0 then
      I[#I + 1] = 'm:' .. b; I[#I + 1] = m
      if tonumber(m) > t[3] then t[3] = tonumber(m) end
    end
    local h = b - d * P
    if h < t[4] then t[4] = h end
    if h > t[5] then t[5] = h end
    if HAS_MASK then t[6] = with_bit(t[6], h) end
  end
  -- the state and the days this entry adds to, in one call (then one HSET)
  local f = {unpack(SF)}
  for _, d in ipairs(days) do f[#f + 1] = 'd:' .. d end
  local st = redis.call('HMGET', dk, unpack(f))
  if st[1] ~= '2' and migrate(hk, dk, st[1]) then st = redis.call('HMGET', dk, unpack(f)) end
  -- the cached sums (C, feature_state): their bucket qb, then per window count, value and
  -- maximum, and where kept (long) the full days' sums (READ) of day md
  local c, qb, md, long = nil, false, nil, false
  if st[3] then
    long = #st[3] == CLEN
    c = {struct.unpack(long and CF or CS, st[3])}; qb = c[1]; md = math.floor(qb / P)
  end
  -- Every bucket of this write a day or more before the cached query's: a backfill's or a
  -- lagging producer's events, each of which would update the cached values (8% of
  -- this script's CPU per backfilled event in bench.store_split) for a query that may never
  -- come again; they are dropped instead, and the next query at that bucket sums afresh.
  if qb and newest and newest <= qb - P then qb = false end
  local was = tonumber(st[2] or 'none')
  local lo, gone = was, {}
  if pd then  -- days before this one can never enter a window again
    if lo ~= nil then
      -- The days to look at: every one from lo while that is a few; else the days that hold
      -- data (a timestamp of 1970 or 2099 among today's would make lo..pd tens of thousands
      -- of days, and this script holds the server for all of them).
      local days = {}
      if pd - lo <= 64 then
        for day = lo, pd - 1 do days[#days + 1] = day end
      else
        local seen = {}
        for _, k in ipairs(redis.call('HKEYS', dk)) do
          local day = tonumber(string.match(k, '^d:(%-?%d+)$'))
          if day and day >= lo and day < pd and not seen[day] then
            seen[day] = true
            days[#days + 1] = day
          end
        end
      end
      for _, day in ipairs(days) do
        local s = redis.call('HGET', dk, 'd:' .. day)
        if s then
          local _, _, _, a, z = struct.unpack(DAY, s)
          local f = {}
          for _, h in ipairs(held(mask_of(s), a, z)) do  -- its buckets holding data (HDEL
            local b = day * P + h                         -- pays per name)
            f[#f + 1] = 'n:' .. b; f[#f + 1] = 'v:' .. b; f[#f + 1] = 'm:' .. b
          end
          if #f > 0 then redis.call('HDEL', hk, unpack(f)) end
          redis.call('HDEL', dk, 'd:' .. day)
          gone[day] = true
          if qb and day * P + P > qb - maxw * P and day * P <= qb then qb = false end
        end
      end
      if next(gone) ~= nil then  -- READ's kept sums (S:0 .. S:<windows>) are summed again
        redis.call('HDEL', hk, unpack(SK, 0, nw))
      end
    end
    if lo ~= nil and lo < pd then lo = pd end
  end
  local changed = false
  for i = 1, #I, 2 do
    local f, x = I[i], I[i + 1]
    local kind = string.byte(f)  -- 110 is 'n' (the count), 109 'm' (the maximum)
    if kind ~= 109 then
      redis.call('HINCRBYFLOAT', hk, f, x)
    else
      local now = redis.call('HGET', hk, f)
      if now and tonumber(now) >= tonumber(x) then x = false else redis.call('HSET', hk, f, x) end
    end
    local b = x and qb and tonumber(string.sub(f, 3))
    -- a write into a full day of the cached query's windows: C keeps its window values only
    -- (short), and the next query sums the full days again (not updated here: READ's sums stay
    -- the doubles a fresh read gives; in live traffic such writes are late events and labels)
    if b and long and c[MD] == md and b < md * P and b >= (md - maxw + 1) * P then
      long = false; changed = true
    end
    if b and b <= qb then
      for j = 1, nw do
        if qb - W[j] * P < b then
          if kind == 109 then
            local y = tonumber(x)
            if y > c[3 * j + 1] then c[3 * j + 1] = y; changed = true end
          else
            local at = kind == 110 and 3 * j - 1 or 3 * j
            c[at] = c[at] + tonumber(x)
            changed = true
          end
        end
      end
    end
  end
  if od and (lo == nil or od < lo) then lo = od end
  local set = {}
  if st[1] ~= '2' then set = {'ok', '2'} end
  for k, day in ipairs(days) do  -- each day's totals, maximum, first and last bucket
    local t, s = tot[day], st[#SF + k]
    local n, v, m, a, z = 0, 0, 0, P, -1  -- a day pruned just now restarts
    local bits = HAS_MASK and 0 or nil  -- none where the day's field has none (feature_state)
    if s and not gone[day] then
      if #s == DAYM_LEN then n, v, m, a, z, bits = struct.unpack(DAYM, s)
      else n, v, m, a, z = struct.unpack(DAY, s); bits = nil end
    end
    if t[3] > m then m = t[3] end
    set[#set + 1] = 'd:' .. day
    n, v, a, z = n + t[1], v + t[2], math.min(a, t[4]), math.max(z, t[5])
    if bits then
      set[#set + 1] = struct.pack(DAYM, n, v, m, a, z, bit.bor(bits, t[6]))
    else
      set[#set + 1] = struct.pack(DAY, n, v, m, a, z)
    end
  end
  if lo ~= nil and lo ~= was then set[#set + 1] = 'lo'; set[#set + 1] = tostring(lo) end
  if c and not qb then
    redis.call('HDEL', dk, 'C')
  elseif changed then
    set[#set + 1] = 'C'
    set[#set + 1] = struct.pack(long and CF or CS, unpack(c, 1, long and 2 + 6 * nw or 1 + 3 * nw))
  end
  if #set > 0 then redis.call('HSET', dk, unpack(set)) end
  redis.call('EXPIRE', hk, retention)
  redis.call('EXPIRE', dk, retention)
end
local a, k = 8, 1
for i, ttl in ipairs({score_ttl, row_ttl}) do  -- the scores, then the feature rows
  local ids = cjson.decode(ARGV[a]); a = a + 1
  for j = 1, #ids do
    redis.call('SET', KB[i] .. ids[j], ARGV[a], 'EX', ttl)
    a = a + 1
  end
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
return true
"""
)
