"""The feature store's Lua scripts (stores.features): read window sums, write counters.

The layout they keep is described in stores.features and docs/architecture.md ("Feature store
layout").
"""

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
-- q (the bucket of the cached sums), then c1.. (count, value per window). Per day: n:/v: its
-- totals, a:/z: the first and last of its buckets holding data (as an offset in the day).
local SF = {'ok', 'lo', 'q'}
for i = 1, 2 * nw do SF[i + 3] = 'c' .. i end
local function migrate(hk, dk)  -- dk has no 'ok': every writer sets it, so dk does not exist
  local flat = redis.call('HGETALL', hk)
  if #flat == 0 then return false end
  local tot, lo, first, last = {}, nil, {}, {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    local b = tonumber(string.sub(f, 3))
    local d = math.floor(b / P)
    local name = string.sub(f, 1, 2) .. d
    tot[name] = (tot[name] or 0) + tonumber(flat[i + 1])
    first[d] = math.min(first[d] or P, b - d * P)
    last[d] = math.max(last[d] or -1, b - d * P)
    if lo == nil or d < lo then lo = d end
  end
  local args = {'ok', '1', 'lo', tostring(lo)}
  for name, v in pairs(tot) do
    args[#args + 1] = name; args[#args + 1] = string.format('%.17g', v)
  end
  for d, h in pairs(first) do
    args[#args + 1] = 'a:' .. d; args[#args + 1] = tostring(h)
    args[#args + 1] = 'z:' .. d; args[#args + 1] = tostring(last[d])
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
# ARGV: per_day, windows, n_scores, then the query buckets of each entity (JSON, a list per pair
# of keys: buckets, day totals). Returns the scores, then per query 2 * n_windows sums
# (count, value per window) as strings (%.17g: exact). The sums of an entity's last query are
# kept in its day hash (SF) and kept up to date by every write, so the next query at the same
# bucket (most transactions of a busy terminal or card) reads 9 fields. A boundary day's
# buckets are read only where its first and last bucket holding data (a:, z:) do not already
# settle the part inside the window (all of the day, or none of it).
READ = (
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
-- buckets first .. last of a day with totals tn, tv and data only in buckets a .. z of it
local function part(hk, day, first, last, tn, tv, a, z)
  if not (tn or tv) then return 0, 0 end
  a, z = tonumber(a) or 0, tonumber(z) or P - 1
  if first <= a and z <= last then return tonumber(tn or '0'), tonumber(tv or '0') end
  return partial(hk, day * P, math.max(first, a), math.min(last, z))
end
-- windows (qb - w * P, qb]: the day's buckets up to qb, the full days in between, and the
-- buckets after qb's hour of the day w days before
local function sums(hk, dk, qb, lo)
  local d = math.floor(qb / P)
  local h = qb - d * P
  local kmax = math.min(maxw, d - (lo or d - maxw))
  if kmax < 0 then  -- no data before the window's end
    for _ = 1, 2 * nw do out[#out + 1] = '0' end
    return
  end
  local f, edge = {}, {0}
  for k = 0, kmax do f[2 * k + 1] = 'n:' .. (d - k); f[2 * k + 2] = 'v:' .. (d - k) end
  local nt = #f
  for i = 1, nw do edge[i + 1] = W[i] end
  for i = 1, #edge do
    f[nt + 2 * i - 1] = 'a:' .. (d - edge[i]); f[nt + 2 * i] = 'z:' .. (d - edge[i])
  end
  local t = redis.call('HMGET', dk, unpack(f))
  local function tot(k)
    if k > kmax then return false, false end
    return t[2 * k + 1], t[2 * k + 2]
  end
  local n0, v0 = tot(0)
  local pn, pv = part(hk, d, 0, h, n0, v0, t[nt + 1], t[nt + 2])
  local cn, cv, k = 0, 0, 1
  for i = 1, nw do
    local w = W[i]
    while k < w do
      local x, y = tot(k)
      if x then cn = cn + tonumber(x) end
      if y then cv = cv + tonumber(y) end
      k = k + 1
    end
    local x, y = tot(w)
    local qn, qv = part(hk, d - w, h + 1, P - 1, x, y, t[nt + 2 * i + 1], t[nt + 2 * i + 2])
    out[#out + 1] = string.format('%.17g', pn + cn + qn)
    out[#out + 1] = string.format('%.17g', pv + cv + qv)
  end
end
local k = n + 1
for _, qbs in ipairs(cjson.decode(ARGV[4])) do
  local hk, dk = KEYS[k], KEYS[k + 1]
  k = k + 2
  local st = state(hk, dk)
  for _, qb in ipairs(qbs) do
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
  end
end
return out
"""
)
# ARGV: per_day, windows, retention, score ttl, row ttl, entities (JSON, one entry per pair of
# keys: [[bucket field, increment, ...], [day field, increment, ...], [prune before day] or [],
# [oldest day incremented] or [], [day, first, last bucket of it incremented, ...]]), then the
# SETs and the stats as before. An entity's cached sums (see READ) get each increment of a
# bucket inside their windows (additions only, as summing the buckets would); they are dropped
# when pruning deletes a day they cover.
WRITE = (
    _MIGRATE
    + """
local retention, score_ttl, row_ttl = ARGV[3], ARGV[4], ARGV[5]
local k = 1
for _, e in ipairs(cjson.decode(ARGV[6])) do
  local hk, dk = KEYS[k], KEYS[k + 1]; k = k + 2
  local inc, days = e[1], e[2]
  -- the state and the day totals this entry adds to, in one call (then one HSET)
  local f, span = {unpack(SF)}, e[5]
  for i = 1, #days, 2 do f[#f + 1] = days[i] end
  local nd = #f
  for i = 1, #span, 3 do f[#f + 1] = 'a:' .. span[i]; f[#f + 1] = 'z:' .. span[i] end
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
      -- The days to look at: every one from lo while that is a few; else the days that hold
      -- data (a timestamp of 1970 or 2099 among today's would make lo..pd tens of thousands
      -- of days, and this script holds the server for all of them).
      local days = {}
      if pd - lo <= 64 then
        for day = lo, pd - 1 do days[#days + 1] = day end
      else
        local seen = {}
        for _, k in ipairs(redis.call('HKEYS', dk)) do
          local day = tonumber(string.match(k, '^[nv]:(%-?%d+)$'))
          if day and day >= lo and day < pd and not seen[day] then
            seen[day] = true
            days[#days + 1] = day
          end
        end
      end
      for _, day in ipairs(days) do
        local t = redis.call('HMGET', dk, 'n:' .. day, 'v:' .. day)
        if t[1] or t[2] then
          local f = {}
          for b = day * P, day * P + P - 1 do f[#f + 1] = 'n:' .. b; f[#f + 1] = 'v:' .. b end
          redis.call('HDEL', hk, unpack(f))
          redis.call('HDEL', dk, 'n:' .. day, 'v:' .. day, 'a:' .. day, 'z:' .. day)
          gone[day] = true
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
    now = now and not gone[tonumber(string.sub(days[i], 3))] and tonumber(now) or 0
    set[#set + 1] = days[i]; set[#set + 1] = string.format('%.17g', now + tonumber(days[i + 1]))
  end
  for i = 1, #span, 3 do  -- the first and last bucket of the day holding data
    local day, j = span[i], nd + 2 * ((i - 1) / 3) + 1
    local a, z = tonumber(st[j]), tonumber(st[j + 1])
    if gone[day] or a == nil or z == nil then a, z = P, -1 end
    if span[i + 1] < a then set[#set + 1] = 'a:' .. day; set[#set + 1] = tostring(span[i + 1]) end
    if span[i + 2] > z then set[#set + 1] = 'z:' .. day; set[#set + 1] = tostring(span[i + 2]) end
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
