"""The forecasting loop: ``metrics`` -> per-series forecasters -> ``forecasts`` and ``alerts``.

A :class:`streams.batching.BatchLoop` (the scorer's transport) consumes ``metrics`` in
micro-batches. Per batch: validate each record (bad ones -> deadletter), bring each touched
series' state up to date from Redis (another worker may have owned its partition meanwhile),
apply the points in order (late and duplicate ones are counted and ignored) and return a
forecast per applied point and an alert per anomaly run, which the loop produces.

The states are snapshotted to Redis at most every :data:`SNAPSHOT_EVERY_S` (a snapshot is
~0.5 MB per series: per batch it cost more than the forecasts), as the loop's checkpoint:
right before it commits offsets, and it commits only past batches whose outputs were
acknowledged. So a crash replays, from the last commit, points onto a snapshot that holds at
least every point before that commit: those it holds are skipped as duplicates, the others
applied, and the state ends up as if nothing had happened (outputs may repeat; alert ids are
stable).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust
import orjson
import redis
from confluent_kafka import Producer
from mode import Service

from riverwatch.core.errors import ModelError
from riverwatch.core.events import MetricPoint
from riverwatch.core.limits import EventLimits
from riverwatch.core.metrics import EVENTS
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.forecast.messages import (
    alert_message,
    derived_payloads,
    forecast_message,
    latest_message,
    minute_totals,
)
from riverwatch.models.forecast.series import (
    ForecastConfig,
    SeriesForecaster,
    Update,
    dump_state,
    load_state,
    period_for,
)
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.records import Out, Record, dead_letter, dead_letters, parse_batch

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 5.0


class ForecastHandler:
    """Applies micro-batches of raw ``metrics`` records; owns the states it has loaded."""

    def __init__(self, settings: Settings, client: redis.Redis, producer: Producer, worker: str):
        self.s = settings
        self.r = client
        self.producer = producer
        self.worker = worker
        self.names = Names(settings.topic_prefix)
        self.config = ForecastConfig.from_settings(settings)
        self.t_forecasts = self.names.topic("forecasts")
        self.t_alerts = self.names.topic("alerts")
        self.t_dead = self.names.topic("deadletter")
        self.states: dict[str, tuple[SeriesForecaster, str | None]] = {}
        self.writes = 0
        self.touched: dict[str, list[bytes]] = {}  # since the last snapshot: applied points
        period_for("", settings.forecast_seasonality)  # a malformed setting fails at start

    def process(self, records: list[Record]) -> list[Out]:
        """Apply one batch; return the records to produce. Raises only when Redis fails."""
        points, bad = parse_batch(MetricPoint, records, EventLimits.from_settings(self.s))
        outs = dead_letters(self.t_dead, bad, self.worker)
        EVENTS.labels(topic="metrics", outcome="deadletter").inc(len(outs))
        self._refresh({p.series_id for _, p in points})
        touched = self.touched  # series -> its applied points, [epoch, value]
        late = 0
        for rec, p in points:
            state = self._state(p.series_id)
            try:
                up = state.update(p.epoch, p.value)
            except Exception as exc:  # a model bug must cost one record, not the agent
                log.exception("series %s: point at %s failed", p.series_id, p.timestamp)
                outs.append(
                    dead_letter(self.t_dead, rec, f"forecaster failed: {exc!r}", self.worker)
                )
                continue
            if up is None:
                late += 1
                continue
            touched.setdefault(p.series_id, []).append(orjson.dumps([p.epoch, p.value]))
            outs += self._outputs(p.series_id, up)
        EVENTS.labels(topic="metrics", outcome="late").inc(late)
        EVENTS.labels(topic="metrics", outcome="applied").inc(len(points) - late)
        return outs

    def checkpoint(self) -> None:
        """Snapshot every series touched since the last checkpoint (the loop calls this before
        it commits)."""
        self._snapshot(self.touched)
        self.touched = {}

    def _state(self, series_id: str) -> SeriesForecaster:
        if series_id not in self.states:
            period = period_for(series_id, self.s.forecast_seasonality)
            self.states[series_id] = (SeriesForecaster(series_id, self.config, period), None)
        return self.states[series_id][0]

    def _refresh(self, series: set[str]) -> None:
        """Reload every series whose snapshot in Redis is not the one this worker holds."""
        ids = sorted(series)
        p = self.r.pipeline(transaction=False)
        for sid in ids:
            p.hget(self.names.forecast_state(sid), "version")
        stale = [
            sid
            for sid, v in zip(ids, p.execute(), strict=True)
            if v is not None
            and sid not in self.touched  # ours, ahead of any snapshot
            and (sid not in self.states or self.states[sid][1] != v.decode())
        ]
        if not stale:
            return
        p = self.r.pipeline(transaction=False)
        for sid in stale:
            p.hmget(self.names.forecast_state(sid), ["state", "version"])
        for sid, (blob, version) in zip(stale, p.execute(), strict=True):
            if blob is None:
                continue
            try:
                self.states[sid] = (load_state(blob), version.decode())
            except ModelError:
                log.exception("series %s starts afresh: its snapshot cannot be loaded", sid)
                self.states.pop(sid, None)

    def _outputs(self, series_id: str, up: Update) -> list[Out]:
        outs = []
        if up.steps:
            body = orjson.dumps(forecast_message(series_id, up))
            outs.append(Out(self.t_forecasts, series_id.encode(), body))
        if up.anomaly:
            EVENTS.labels(topic="metrics", outcome="anomaly").inc()
        if up.alert:
            body = orjson.dumps(alert_message(series_id, up))
            outs.append(Out(self.t_alerts, b"forecast_anomaly", body))
        return outs

    def _snapshot(self, touched: dict[str, list[bytes]]) -> None:
        """Each touched series' state, latest forecast, summary, and its last ``horizon``
        observed points (the past side of the dashboard's chart), in one transaction."""
        if not touched:
            return
        p = self.r.pipeline(transaction=True)
        index = self.names.forecast_series()
        for sid, observed in sorted(touched.items()):
            key = self.names.forecast_observed(sid)
            p.rpush(key, *observed)
            p.ltrim(key, -self.config.horizon, -1)
            state = self.states[sid][0]
            self.writes += 1
            version = f"{self.worker}:{self.writes}"
            mapping: dict[str, bytes | str] = {"state": dump_state(state), "version": version}
            if state.steps and state.last_ts is not None:
                body = latest_message(
                    sid, state.last_ts, state.model, state.forecast(), state.step_info()
                )
                mapping["latest"] = orjson.dumps(body)
            p.hset(self.names.forecast_state(sid), mapping=mapping)  # type: ignore[arg-type]
            p.hset(index, sid, orjson.dumps(state.summary()))
            self.states[sid] = (state, version)
        p.execute()


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
        settings: Settings,
        client: redis.Redis,
        flush_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        names = Names(settings.topic_prefix)
        self.keys = [names.derived("totals"), names.derived("meta")]
        self.grace = settings.derived_grace_s
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


def register_forecasting(
    app: faust.App,
    settings: Settings,
    client: redis.Redis,
    producer: Producer,
    worker: str | None = None,
) -> BatchLoop:
    """Add the forecasting loop (``metrics``, micro-batches) to a worker's faust app, as a
    service. One thread owns the states: River work stays off the event loop."""
    names = Names(settings.topic_prefix)
    handler = ForecastHandler(
        settings, client, producer, worker or f"{socket.gethostname()}:{os.getpid()}"
    )
    loop = BatchLoop(
        settings,
        names.topic("metrics"),
        names.group(settings.consumer_group, "forecaster"),
        handler.process,
        producer,
        "forecaster",
        checkpoint=handler.checkpoint,
        commit_every_s=SNAPSHOT_EVERY_S,
    )

    def die(exc: BaseException) -> None:
        # The restarted worker replays from the last commit onto the last snapshot.
        log.critical("forecasting loop died (%r); stopping the worker", exc)
        os._exit(3)

    @app.service
    class ForecastingService(Service):
        async def on_start(self) -> None:
            loop.start(die)

        async def on_stop(self) -> None:
            await asyncio.get_running_loop().run_in_executor(None, loop.stop)

    return loop
