"""The feature store's Lua scripts (core.featurestore): read window sums, write counters.

The layout they keep is described in core.featurestore and docs/architecture.md ("Feature store
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
# sums (see READ) get each increment of a bucket inside their windows (additions only, as
# summing the buckets would); they are dropped when pruning deletes a day they cover.
WRITE = (
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
