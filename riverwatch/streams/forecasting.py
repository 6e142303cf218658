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

import logging

import orjson
import redis
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.core.errors import ModelError
from riverwatch.core.events import MetricPoint
from riverwatch.core.metrics import EVENTS
from riverwatch.models.forecast.messages import (
    alert_message,
    forecast_message,
    latest_message,
)
from riverwatch.models.forecast.series import SeriesForecaster, Update, period_for
from riverwatch.models.forecast.state import dump_state, load_state
from riverwatch.streams.records import Out, Record, dead_letter, dead_letters, parse_batch
from riverwatch.streams.rejects import RejectCounter

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 5.0


class ForecastHandler:
    """Applies micro-batches of raw ``metrics`` records; owns the states it has loaded."""

    def __init__(self, ctx: Context, client: redis.Redis, producer: Producer, worker: str):
        self.cfg = ctx.worker_config
        self.limits = ctx.limits
        self.r = client
        self.producer = producer
        self.worker = worker
        self.names = ctx.names
        self.config = ctx.forecast
        self.t_forecasts = self.names.topic("forecasts")
        self.t_alerts = self.names.topic("alerts")
        self.t_dead = self.names.topic("deadletter")
        self.rejects = RejectCounter(client, self.names, "metrics", count_valid=True)
        self.states: dict[str, tuple[SeriesForecaster, str | None]] = {}
        self.writes = 0
        self.touched: dict[str, list[bytes]] = {}  # since the last snapshot: applied points

    def process(self, records: list[Record]) -> list[Out]:
        """Apply one batch; return the records to produce. Raises only when Redis fails."""
        broken: list[set[str]] = []
        limits = self.limits
        points, bad = parse_batch(MetricPoint, records, limits, broken, "metrics")
        # the monitor's data-quality counters (core.rejects): points rejected and passed
        self.rejects.count(records, zip((rec for rec, _ in bad), broken, strict=True))
        outs = dead_letters(self.t_dead, bad, self.worker)
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
            period = period_for(series_id, self.cfg.seasonality)
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
