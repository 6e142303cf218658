"""The feature store's read script (stores.features).

Split from stores.feature_scripts (which holds the write script) and stores.feature_state (the
code both scripts start with) to keep each module short. The layout they keep is described in
stores.features and docs/architecture.md ("Feature store layout").
"""

from riverwatch.stores.feature_state import MIGRATE

# ARGV: per_day, windows, key bases, the event ids whose scores to read (JSON), then the
# queries (one flat JSON array; per entity: its id, 1 if it is a card (cards keep maximums; a
# terminal's maximum fields are never read, it reads 0), the first query bucket whose values
# are cached (below), the number of its query buckets, and those). Returns the
# scores, then one string: per query 3 * n_windows values (count sum, value sum, value maximum
# per window; 0 where nothing), little-endian doubles (exact). Flat and joined because cjson
# builds a table per nested list, and a reply of one string per value costs redis-py a parsed
# object each (with float() per value, ~5 us of the scorer's CPU per event).
# The values of an entity's last query are kept in its day hash (C) and kept up to date by
# every write, so the next query at the same bucket (most transactions of a busy terminal or
# card) reads 3 fields (SF) and returns C's values as they are. Only queries from the given
# bucket on are cached (the scorer: a day before wall-clock now's): a backfill's older events
# each query a later bucket than the last, so their cached values were written, kept up to
# date by the write and never read, a sixth of Valkey's CPU per backfilled event
# (bench.hotpath's backfill part). A boundary
# day's buckets are read only where its first and last bucket holding data (in its d: field)
# do not already settle the part inside the window (all of the day, or none of it). A bucket's
# missing m: field (state written before maximums) reads as 0.
READ = (
    MIGRATE
    + """
local EIDS = cjson.decode(ARGV[4])
local n = #EIDS
local out, V = {}, {}
-- One query's values (X: count sum, value sum, maximum per window), packed as doubles: one
-- struct.pack per query against a string.format per value (9 of them: 4.8 us of Valkey's CPU
-- against 0.4 in a probe, README issue 15, session 27), and the scorer reads the reply with
-- one numpy call instead of parsing text.
local X, OUT = {}, '<' .. string.rep('d', 3 * nw)
for i = 1, 3 * nw do X[i] = 0 end
local ZERO = struct.pack(OUT, unpack(X))
for i = 1, n do out[i] = redis.call('GET', KB[1] .. EIDS[i]) or false end
-- Field names per day or bucket, built once per call: 'n:' .. x converts the number to a
-- string each time, and a window's read names up to 31 day fields, mostly the same days for
-- every entity of a batch (a batch's events are close in time, a backfill's too).
local NVM, DD = {}, {}
local function nvm(x)
  local t = NVM[x]
  if not t then t = {'n:' .. x, 'v:' .. x, 'm:' .. x}; NVM[x] = t end
  return t
end
local function dd(x)
  local t = DD[x]
  if not t then t = 'd:' .. x; DD[x] = t end
  return t
end
local S = 3  -- fields read per bucket: n, v, and m where the entity keeps maximums
-- An entity's day hash dk as a table (field -> value), from one HGETALL per call: a window
-- read needs up to 31 of its day fields and 13 of its state, and HMGET pays for each name
-- passed (in the per-field layout before: 55 us for 101 fields against 20 for HGETALL of the
-- ~170 a 31-day entity held: a probe of Valkey's CPU, README issue 15, session 26). The hash
-- is bounded: the write script prunes its days to the longest window's. Its day fields do
-- not change within this script (only the cached sums, which are not read through here).
-- The last entity's is kept for its next query (an entity's queries come together), no more.
local DK, H = nil, nil
local function day_hash(dk)
  if dk ~= DK then
    local flat = redis.call('HGETALL', dk)
    H = {}
    for i = 1, #flat, 2 do H[flat[i]] = flat[i + 1] end
    DK = dk
  end
  return H
end
-- the fields (count, value, and maximum where kept) of the buckets base + h for each h of hs,
-- from one HMGET (none for no bucket: HMGET needs a field)
local function buckets(hk, base, hs)
  if #hs == 0 then return {} end
  local f = {}
  for _, h in ipairs(hs) do
    local nm = nvm(base + h)
    f[#f + 1] = nm[1]; f[#f + 1] = nm[2]
    if S == 3 then f[#f + 1] = nm[3] end
  end
  return redis.call('HMGET', hk, unpack(f))
end
-- the buckets first .. last of one day (base = its first bucket; mask: its d: field's bits of
-- the buckets holding data, nil where it has none): sums and maximum, added from the first
-- bucket on, or from the last back (back: a boundary day's part, which ends at the day's last
-- bucket holding data, so that its kept sums, kept, are one running total). Only the buckets
-- holding data are read (the bits): the sums are the same doubles, a missing one adds nothing.
local function partial(hk, base, first, last, back, mask)
  if last < first then return 0, 0, 0 end
  local hs = held(mask, first, last)
  if #hs == 0 then return 0, 0, 0 end
  local vals = buckets(hk, base, hs)
  local sn, sv, sm = 0, 0, 0
  local j0, j1, step = 1, #vals, S
  if back then j0, j1, step = #vals - S + 1, 1, -S end
  for j = j0, j1, step do
    if vals[j] then sn = sn + tonumber(vals[j]) end
    if vals[j + 1] then sv = sv + tonumber(vals[j + 1]) end
    if S == 3 and vals[j + 2] then sm = math.max(sm, tonumber(vals[j + 2])) end
  end
  return sn, sv, sm
end
-- A query's partly covered days, read bucket by bucket (partial): its own day up to its hour
-- and each window's boundary day after that hour, up to 23 buckets of 3 fields each (HMGET,
-- then a tonumber per value; since session 37 only those holding data, by the day's bits), at
-- every first query of an entity in a new hour: most of what
-- grew with history in such a query (README, issue 15: Valkey's CPU per event 56-59 us with a
-- day of history, 117-123 with 30, sessions 34-35; the full days' sums, from one HGETALL of the
-- day hash, are the rest). These days are the same for every query of that day, so their sums
-- are kept, one field per part in the entity's bucket hash: S:0, the query's own day, from its
-- first bucket holding data (a) to each bucket; S:<window>, its boundary day, from each bucket
-- to its last holding data (z). Each holds the day, the day's d: field as it was when they were
-- summed, then per bucket from a to z the count, value and maximum as doubles; one HMGET reads
-- an entity's. They are one running total in the order partial adds the buckets (a prefix from
-- a on, a suffix from z back: the same doubles; until session 36 partial added a suffix from its
-- first bucket on, and each suffix was summed anew, 300 additions a day instead of 24), once
-- per day and part,
-- for a day that holds SUF_N transactions or more: a busy entity's (a terminal's, mostly; 8
-- transactions a day for 30 days are 480 bucket fields or more, past the compact encoding's 128
-- anyway); an entity with a few transactions a day is read bucket by bucket, as before, and
-- keeps no such fields (up to 4 of up to 632 bytes). Every write to a day changes its d: field
-- (its count or value total: a transaction adds a count, a label's fraud a value), so a field
-- whose d: differs from the day's is summed again; the write script drops them when it prunes
-- days (a day pruned and written again could end with the same d: field). A field holding a
-- later day than the query's is not replaced (a late event's query; the fields follow the
-- newest queries), and none are kept for queries before cache_from (a backfill's).
local SUF_N = 8
local SUF, SUFK = {}, nil
-- buckets first .. last of a day (d: field s, data in buckets a .. z) from its kept sums: i 0,
-- the query's own day, from a to each bucket (last: the query's hour; a terminal's query, a
-- label delay back, ends inside a day of complete data); else window i's boundary day, from
-- each bucket to z (first: after the query's hour)
local function kept(hk, i, day, first, last, s, a, z)
  if hk ~= SUFK then  -- all of an entity's, in one HMGET (its queries come together)
    local v = redis.call('HMGET', hk, unpack(SK, 0, nw))
    SUF, SUFK = {}, hk
    for j = 0, nw do SUF[j] = v[j + 1] end
  end
  local c = SUF[i]
  local head = struct.pack('<d', day) .. s  -- 48 or 56 bytes (s: five or six doubles)
  local at = #head + 1 + 24 * ((i == 0 and last or first) - a)
  if c and string.sub(c, 1, #head) == head then return struct.unpack('<ddd', c, at) end
  local mask = mask_of(s)
  if c and struct.unpack('<d', c) > day then
    return partial(hk, day * P, first, last, i > 0, mask)
  end
  local hs = held(mask, a, z)
  local vals = buckets(hk, day * P, hs)
  local k, N, Y, M = z - a + 1, {}, {}, {}  -- per bucket a .. z (nil: no data)
  for j, h in ipairs(hs) do
    local o, q = (j - 1) * S, h - a + 1
    N[q] = vals[o + 1] and tonumber(vals[o + 1])
    Y[q] = vals[o + 2] and tonumber(vals[o + 2])
    M[q] = S == 3 and vals[o + 3] and tonumber(vals[o + 3])
  end
  -- one running total: a prefix's from a, a suffix's from z back (partial adds in that order)
  local out = {head}
  local sn, sv, sm = 0, 0, 0
  local q0, q1, step = 1, k, 1
  if i > 0 then q0, q1, step = k, 1, -1 end
  for q = q0, q1, step do
    if N[q] then sn = sn + N[q] end
    if Y[q] then sv = sv + Y[q] end
    if M[q] then sm = math.max(sm, M[q]) end
    out[q + 1] = struct.pack('<ddd', sn, sv, sm)
  end
  c = table.concat(out)
  redis.call('HSET', hk, SK[i], c)
  SUF[i] = c
  return struct.unpack('<ddd', c, at)
end
-- buckets first .. last of a day (its d: field s: totals, maximum, data only in buckets a ..
-- z; nil: a day with no data); i: 0 for the query's own day, else the window whose boundary
-- day it is; from the kept sums (kept) where keep
local function part(hk, day, first, last, s, i, keep)
  if not s then return 0, 0, 0 end
  local tn, tv, tm, a, z = struct.unpack(DAY, s)
  if first <= a and z <= last then return tn, tv, tm end
  first, last = math.max(first, a), math.min(last, z)
  if keep and last >= first and tn >= SUF_N and (i == 0 and first == a or i > 0 and last == z) then
    return kept(hk, i, day, first, last, s, a, z)
  end
  return partial(hk, day * P, first, last, i > 0, mask_of(s))
end
-- windows (qb - w * P, qb]: the day's buckets up to qb, the full days in between, and the
-- buckets after qb's hour of the day w days before. Sets X, and FD: per window the sums of its
-- full days, which C keeps (feature_state) for the entity's next query on day d where its
-- windows hold FD_DAYS days of data or more (returns whether they do). Where C holds
-- them for d (c, and keep), the day fields this query reads besides them, its own day's and
-- each boundary day's, come from one HMGET instead of the HGETALL of up to 31 days and a
-- struct.unpack each: in the first query of an entity in a new hour that was 19 of ~100 us of
-- Valkey's CPU per event with 30 days of history and nothing with one (README, issue 15,
-- session 36). The write script drops them from C on a write into any of those days, so they
-- are the doubles the loop below would sum.
local FD, FDF = {}, '<' .. string.rep('d', 3 * nw)
local function sums(hk, dk, qb, lo, keep, c)
  local d = math.floor(qb / P)
  local h = qb - d * P
  local kmax = math.min(maxw, d - (lo or d - maxw))
  if kmax < 0 then  -- no data before the window's end
    for i = 1, 3 * nw do X[i] = 0 end
    return false
  end
  local fd, t = nil, nil
  if keep and c and #c == CLEN and struct.unpack('<d', c, 1 + 8 * (MD - 1)) == d then
    fd = {struct.unpack(FDF, c, 1 + 8 * MD)}
    local f = {dd(d)}
    for i = 1, nw do f[i + 1] = dd(d - W[i]) end
    local vals = redis.call('HMGET', dk, unpack(f))
    t = {}
    for i = 1, #f do t[f[i]] = vals[i] end
  else
    t = day_hash(dk)
  end
  -- the day k days before d: its d: field (nil where none)
  local function day(k)
    return k <= kmax and t[dd(d - k)] or nil
  end
  local pn, pv, pm = part(hk, d, 0, h, day(0), 0, keep)
  local cn, cv, cm, k = 0, 0, 0, 1
  for i = 1, nw do
    local w = W[i]
    if fd then
      cn, cv, cm = fd[3 * i - 2], fd[3 * i - 1], fd[3 * i]
    else
      while k < w do
        local s = k <= kmax and t[dd(d - k)]
        if s then
          local x, y, m = struct.unpack(DAY, s)
          cn = cn + x; cv = cv + y
          if m > cm then cm = m end
        end
        k = k + 1
      end
    end
    FD[3 * i - 2], FD[3 * i - 1], FD[3 * i] = cn, cv, cm
    local qn, qv, qx = part(hk, d - w, h + 1, P - 1, day(w), i, keep)
    X[3 * i - 2] = pn + cn + qn
    X[3 * i - 1] = pv + cv + qv
    X[3 * i] = math.max(pm, cm, qx)
  end
  return kmax >= FD_DAYS
end
-- SF of an entity as state() gives it, from its whole day hash: for an entity whose queries
-- are all older than cache_from (a backfill's, a late producer's), which its cached sums
-- hardly ever serve, so its windows are summed from that hash anyway, and the HMGET of SF
-- would be a second read of it
local function state_whole(hk, dk)
  local t = day_hash(dk)
  if t['ok'] ~= '2' then
    if not migrate(hk, dk, t['ok']) then return nil end
    DK = nil  -- migrated: read it again
    t = day_hash(dk)
  end
  local st = {}
  for i = 1, #SF do st[i] = t[SF[i]] or false end
  return st
end
local Q, p = cjson.decode(ARGV[5]), 1
while p <= #Q do
  local hk, dk = keys_of(Q[p + 1], Q[p])
  S = Q[p + 1] == 1 and 3 or 2
  local cache_from = Q[p + 2]
  local q0, q1 = p + 4, p + 3 + Q[p + 3]
  p = q1 + 1
  local old = true
  for j = q0, q1 do
    if Q[j] >= cache_from then old = false end
  end
  local st
  if old then st = state_whole(hk, dk) else st = state(hk, dk) end
  for j = q0, q1 do
    local qb = Q[j]
    local c = st and st[3]
    if c and struct.unpack('<d', c) == qb then
      V[#V + 1] = string.sub(c, 9, CSLEN)
    elseif st then
      local long = sums(hk, dk, qb, tonumber(st[2]), qb >= cache_from, c)
      local x = struct.pack(OUT, unpack(X))
      V[#V + 1] = x
      if qb >= cache_from then  -- kept for the next query at qb (see above)
        st[3] = struct.pack('<d', qb) .. x
        if long then
          st[3] = st[3] .. struct.pack('<d', math.floor(qb / P)) .. struct.pack(FDF, unpack(FD))
        end
        redis.call('HSET', dk, 'C', st[3])
      end
    else
      V[#V + 1] = ZERO
    end
  end
end
out[n + 1] = table.concat(V)
return out
"""
)
