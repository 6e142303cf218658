"""Business KPIs derived from scored transactions as metric series, aggregated per event minute.

The scorer feeds :class:`DerivedSeries`; the series go to ``metrics`` like any producer's, so
the forecasting role forecasts them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import redis

from riverwatch.context import Context
from riverwatch.models.forecast.messages import derived_payloads, minute_totals
from riverwatch.streams.records import Out

# Per flush, atomically: add the per-minute totals aggregated since the last one (to a closed
# minute: count them as late), raise the event-time watermark, and close (emit once) every
# minute it passed by the grace. Only minutes that had events come out: a gap is a gap (a
# replay or a backfill jumping over days of event time would otherwise emit thousands of zeros).
_DERIVED_LUA = """
local closed = tonumber(redis.call('HGET', KEYS[2], 'closed') or '-1')
local wm = math.max(tonumber(redis.call('HGET', KEYS[2], 'wm') or '-1'), tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], 'wm', tostring(wm))
for i = 3, #ARGV, 4 do
  if tonumber(ARGV[i]) < closed then redis.call('HINCRBY', KEYS[2], 'late', ARGV[i + 1])
  else
    redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[i], ARGV[i + 1])
    redis.call('HINCRBYFLOAT', KEYS[1], 'a:' .. ARGV[i], ARGV[i + 2])
    redis.call('HINCRBY', KEYS[1], 'f:' .. ARGV[i], ARGV[i + 3])
  end
end
local cutoff = math.floor((wm - tonumber(ARGV[1])) / 60)
if cutoff <= closed then return {} end
local flat, mins, order, out = redis.call('HGETALL', KEYS[1]), {}, {}, {}
for j = 1, #flat, 2 do
  local m, k = tonumber(string.sub(flat[j], 3)), string.sub(flat[j], 1, 1)
  if m < cutoff then
    if mins[m] == nil then mins[m] = {'0', '0', '0'}; table.insert(order, m) end
    mins[m][k == 'n' and 1 or (k == 'a' and 2 or 3)] = flat[j + 1]
    redis.call('HDEL', KEYS[1], flat[j])
  end
end
table.sort(order)
redis.call('HSET', KEYS[2], 'closed', cutoff)
for _, m in ipairs(order) do
  table.insert(out, tostring(m))
  for k = 1, 3 do table.insert(out, mins[m][k]) end
end
return out
"""


class DerivedSeries:
    """The scorers' business series: transactions, amount and fraud-alert rate per minute.

    Call :meth:`points` with each scored batch's *first-time* events (not replays): it adds
    them to per-minute totals in memory and, at most once per ``flush_s`` of wall time, adds
    those to the totals in Redis, shared by every scorer, in one round trip that returns the
    minutes that closed; it returns their ``metrics`` records. A minute (event time) closes
    once any scorer has flushed an event ``RIVERWATCH_DERIVED_GRACE_S`` past its end, and
    exactly one scorer emits it. Totals are exact when the scorers' event-time skew stays
    within the grace; a later event for a closed minute is counted in ``late`` (Redis
    ``derived:meta``), not emitted. A minute without events emits nothing.

    What a scorer aggregated since its last flush (at most ``flush_s`` of traffic) is lost if
    it dies: these are dashboard series, the scores themselves are not at stake.
    """

    def __init__(
        self,
        ctx: Context,
        client: redis.Redis,
        flush_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        names = ctx.names
        self.keys = [names.derived("totals"), names.derived("meta")]
        self.grace = ctx.worker_config.derived_grace_s
        self.topic = names.topic("metrics")
        self.script = client.register_script(_DERIVED_LUA)
        self.flush_s = flush_s
        self.clock = clock
        self.totals: dict[int, list[Any]] = {}  # minute -> [n, amount, alerts] since the flush
        self.watermark: float | None = None
        self.flushed = float("-inf")

    def points(self, scored: Iterable[tuple[float, float, bool]], force: bool = False) -> list[Out]:
        """``scored``: (event epoch, amount, fraud alert published?) per fresh transaction.

        Returns the records of the minutes closed by a flush (when ``flush_s`` passed since the
        last, or ``force``), else nothing."""
        batch = list(scored)
        if batch:
            for minute, (n, amount, alerts) in minute_totals(batch).items():
                tot = self.totals.setdefault(minute, [0, 0.0, 0])
                tot[0] += n
                tot[1] += amount
                tot[2] += alerts
            top = max(epoch for epoch, _, _ in batch)
            self.watermark = top if self.watermark is None else max(self.watermark, top)
        if self.watermark is None or not (force or self.clock() - self.flushed >= self.flush_s):
            return []
        return self.flush()

    def flush(self) -> list[Out]:
        """Add what was aggregated to Redis and return the records of the minutes it closed."""
        if self.watermark is None:
            return []
        args: list[Any] = [self.grace, repr(self.watermark)]
        for minute, (n, amount, alerts) in sorted(self.totals.items()):
            args += [minute, n, repr(amount), alerts]
        reply = self.script(keys=self.keys, args=args)
        self.totals.clear()
        self.flushed = self.clock()
        outs = []
        for i in range(0, len(reply), 4):
            minute, n, amount, alerts = reply[i : i + 4]
            for sid, body in derived_payloads(int(minute), int(n), float(amount), int(alerts)):
                outs.append(Out(self.topic, sid.encode(), orjson.dumps(body)))
        return outs
