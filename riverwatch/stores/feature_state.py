"""The Lua both feature store scripts start with (stores.feature_read's READ,
stores.feature_scripts' WRITE): their arguments, key names, the state layout and its migration.

Split from stores.feature_read to keep each module short. The layout is described in
stores.features and docs/architecture.md ("Feature store layout").
"""

# Why Lua: redis-py spends ~10 us of Python per pipelined command, and a batch needs ~10
# commands per transaction; one script call per batch moves that loop into the server (and
# makes the write atomic).
#
# Key names: the scripts build the per-event and per-entity keys themselves, from the key bases
# (Names: the prefix, "rw:score:", "rw:ent:card:", ...) and the ids in their JSON arguments,
# instead of taking ~10 keys per event as KEYS. Each key argument cost the scorer ~0.5 us of
# Python (its name formatted, encoded and packed: ~4-5 us of ~63 per event, bench.hotpath). The
# price: these keys are not declared, which a standalone server (the deployment here) allows
# and Redis Cluster does not; the keys of one batch span every slot anyway, so a cluster would
# already need batches split by slot and the keys of the slot declared (see
# docs/architecture.md, "Feature store layout").
#
# Both scripts start with ARGV[1] = buckets per day, ARGV[2] = the window days (ascending,
# JSON), ARGV[3] = the key bases (JSON: score, feature row, then a card's entity and day hash,
# then a terminal's; stores.features.RedisFeatureStore.bases), and share MIGRATE: day totals
# rebuilt from an entity's buckets when its day hash is not marked complete (state written
# before it).
MIGRATE = """
local P = tonumber(ARGV[1])
local W = cjson.decode(ARGV[2])
local KB = cjson.decode(ARGV[3])
-- an entity's two keys from its kind (1: card, else terminal) and id
local function keys_of(card, id)
  local o = card == 1 and 2 or 4
  return KB[o + 1] .. id, KB[o + 2] .. id
end
local nw = #W
local maxw = W[nw]
-- an entity's state in its day hash (SF): ok ('2': day totals complete, in this layout), lo
-- (no data before that day) and C, the cached sums (READ): the bucket of the query they belong
-- to, then per window its count, value and maximum as READ returns them (CS, 8 + 24 * nw bytes,
-- as all were until session 36); for an entity with FD_DAYS days of data or more in its
-- windows, then also the query's day and per window the sums of its full days (the days
-- between its boundary day and the query's: count, value, maximum) (CF, CLEN bytes; a write
-- into one of those days makes C short again); doubles packed (until session 27 a field
-- each: q, c1.., qm, x1..; dropped when an entity is packed). Per day one field, d:<day>, five
-- doubles packed (DAY): its count and value totals, its maximum, and its first and last bucket
-- holding data (as an offset in the day). Packed, not a field each (n:/v:/m:/a:/z:, ok = '1',
-- the layout before session 27): a window's read takes the day totals from one HGETALL of the
-- day hash, and Valkey's CPU for that and the sums over 31 days fell from 56 to 13 us per
-- entity in a probe (31 days in both layouts; README, issue 15, session 27): a fifth of the
-- fields to return and index, and struct.unpack instead of a tonumber per value. Doubles are
-- exact: the values are the doubles the per-field layout's %.17g strings held. Since session
-- 37 a sixth double follows where P <= 31 (DAYM): a bit per bucket of the day holding data
-- (bit h: the day's bucket h), so that a read of part of a day names only those buckets (a card
-- with a few payments a day held them in 1-3 of up to 23 buckets, each named with its 3 fields
-- in the HMGET: README, issue 15, session 37). A d: field of five doubles (written before, or
-- with P > 31) has no such bits and stays five: any bucket from its first to its last may hold
-- data; the write that adds to it cannot know which did. (Code before it reads a six-double
-- field's first five, but reads its kept sums, S:, at offsets for a five-double head: cut the
-- d: fields to 40 bytes before rolling back to it.)
local DAY, DAYM = '<ddddd', '<dddddd'
local HAS_MASK = P <= 31  -- the bits fit LuaBitOp's 32-bit integers, and stay positive
local BIT = {}  -- BIT[h]: the bit of the day's bucket h
for h = 0, math.min(P, 31) - 1 do BIT[h] = 2 ^ h end
local DAYM_LEN = 48  -- bytes of a d: field with the bits
-- the bits of a day's d: field s, or nil where it has none
local function mask_of(s)
  if #s == DAYM_LEN then return (struct.unpack('<d', s, 41)) end
  return nil
end
-- mask with the day's bucket h's bit set (arithmetic, as held reads them)
local function with_bit(mask, h)
  if (mask / BIT[h]) % 2 < 1 then return mask + BIT[h] end
  return mask
end
-- the offsets in the day, first .. last in order, of the buckets that may hold data (mask nil:
-- each of them); the bits are read with arithmetic (a call to LuaBitOp per bucket cost more)
local function held(mask, first, last)
  local out = {}
  if last < first then return out end
  if not mask then
    for h = first, last do out[#out + 1] = h end
    return out
  end
  local m = math.floor(mask / BIT[first])
  for h = first, last do
    if m == 0 then break end
    local r = m % 2
    if r == 1 then out[#out + 1] = h end
    m = (m - r) / 2
  end
  return out
end
local SF = {'ok', 'lo', 'C'}
local CS, CF = '<' .. string.rep('d', 1 + 3 * nw), '<' .. string.rep('d', 2 + 6 * nw)
local CSLEN, CLEN, MD = 8 * (1 + 3 * nw), 8 * (2 + 6 * nw), 2 + 3 * nw  -- MD: CF's day index
-- Fewer days than this in an entity's windows are summed afresh from the day hash, not kept
-- in C: its HGETALL is then a few fields, about what the HMGET that replaces it names, and a
-- C of CLEN bytes costs every write of the entity (a fresh entity's most of all) twice the
-- unpacking and packing (a judgment, not a tuned value: README, issue 15, session 36).
local FD_DAYS = 8
-- the names of READ's kept sums of a query's partly covered days in the bucket hash (S:0, the
-- query's own day; S:<window>, each window's boundary day), which the write script drops when
-- it prunes days
local SK = {}
for i = 0, nw do SK[i] = 'S:' .. i end
local OLD_CACHE = {q = true, qm = true}  -- the per-field layout's cached sums
for i = 1, 2 * nw do OLD_CACHE['c' .. i] = true end
for i = 1, nw do OLD_CACHE['x' .. i] = true end
-- dk in this layout from its fields in the one before (ok = '1'): a day's missing fields read
-- as that layout read them (no maximum: 0; no first and last bucket: the whole day)
local function repack(dk)
  local flat = redis.call('HGETALL', dk)
  local days, old = {}, {}
  for i = 1, #flat, 2 do
    local kind, d = string.match(flat[i], '^([nvmaz]):(%-?%d+)$')
    if OLD_CACHE[flat[i]] then old[#old + 1] = flat[i] end
    if kind then
      old[#old + 1] = flat[i]
      local t = days[d]
      if not t then t = {n = 0, v = 0, m = 0, a = 0, z = P - 1}; days[d] = t end
      t[kind] = tonumber(flat[i + 1])
    end
  end
  local args = {'ok', '2'}
  for d, t in pairs(days) do
    args[#args + 1] = 'd:' .. d
    args[#args + 1] = struct.pack(DAY, t.n, t.v, t.m, t.a, t.z)
  end
  for i = 1, #old, 4096 do redis.call('HDEL', dk, unpack(old, i, math.min(#old, i + 4095))) end
  redis.call('HSET', dk, unpack(args))
end
-- dk made complete in this layout: packed from the layout before (ok = '1'), or rebuilt from
-- the entity's buckets (no ok: state written before day totals; every writer sets ok, so dk
-- does not exist then). False for an entity with no data at all.
local function migrate(hk, dk, ok)
  if ok == '1' then repack(dk); return true end
  local flat = redis.call('HGETALL', hk)
  if #flat == 0 then return false end
  local days, lo = {}, nil
  for i = 1, #flat, 2 do
    local f = flat[i]
    local kind = string.byte(f)  -- 110 is 'n' (a count), 109 'm' (a maximum), 118 'v'
    if kind == 109 or kind == 110 or kind == 118 then  -- not S: (READ's boundary sums)
      local b = tonumber(string.sub(f, 3))
      local d = math.floor(b / P)
      local x = tonumber(flat[i + 1])
      local t = days[d]
      if not t then t = {0, 0, 0, P, -1, 0}; days[d] = t end
      if kind == 109 then t[3] = math.max(t[3], x)
      elseif kind == 110 then t[1] = t[1] + x
      else t[2] = t[2] + x end
      t[4] = math.min(t[4], b - d * P)
      t[5] = math.max(t[5], b - d * P)
      if HAS_MASK then t[6] = with_bit(t[6], b - d * P) end
      if lo == nil or d < lo then lo = d end
    end
  end
  local args = {'ok', '2', 'lo', tostring(lo)}
  for d, t in pairs(days) do
    args[#args + 1] = 'd:' .. d
    args[#args + 1] = struct.pack(HAS_MASK and DAYM or DAY, unpack(t, 1, HAS_MASK and 6 or 5))
  end
  redis.call('HSET', dk, unpack(args))
  local ttl = redis.call('PTTL', hk)
  if ttl > 0 then redis.call('PEXPIRE', dk, ttl) end
  return true
end
-- SF of an entity, its old state migrated first; nil for an entity with no data at all
local function state(hk, dk)
  local st = redis.call('HMGET', dk, unpack(SF))
  if st[1] == '2' then return st end
  if migrate(hk, dk, st[1]) then return redis.call('HMGET', dk, unpack(SF)) end
  return nil
end
"""
