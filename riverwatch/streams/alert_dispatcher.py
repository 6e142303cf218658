"""Alert delivery in every worker: the ``alerts`` dispatcher agent and the webhook sender.

The dispatcher validates each record (bad -> ``deadletter``), then dedups, applies the
cooldown, stores the alert in the Redis stream (GET /v1/alerts, SSE) and queues it for every
matching webhook subscription, in one atomic Redis step (alerts.store). It never dies on
one record. The queues are drained by streams.webhook_sender.Deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust
from mode import Service
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from riverwatch.alerts.rules import Filters, cooldown_for, parse_kind_seconds, severity_rank
from riverwatch.alerts.store import AlertStore
from riverwatch.core.errors import ConfigError, InvalidEvent
from riverwatch.core.events import dumps, parse_event
from riverwatch.core.metrics import ALERTS, ALERTS_SUPPRESSED, EVENTS
from riverwatch.core.names import Names
from riverwatch.core.outputs import Alert
from riverwatch.core.redis import async_redis_client
from riverwatch.core.settings import Settings
from riverwatch.streams.records import Out, Record, dead_letter, from_events, raw_topic
from riverwatch.streams.webhook_sender import Deliveries

log = logging.getLogger(__name__)
# Worth waiting out; anything else about one record is that record's problem.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


def cooldowns(settings: Settings) -> dict[str, float]:
    """The per-kind cooldowns of RIVERWATCH_ALERT_COOLDOWN_KINDS; ConfigError when malformed."""
    try:
        return parse_kind_seconds(settings.alert_cooldown_kinds)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


class Dispatcher:
    """Turns a batch of ``alerts`` records into stored, queued alerts plus dead letters."""

    def __init__(self, settings: Settings, store: AlertStore, worker: str):
        self.s = settings
        self.store = store
        self.worker = worker
        self.deadletter = Names(settings.topic_prefix).topic("deadletter")
        self.cooldowns = cooldowns(settings)

    async def _targets(self) -> list[tuple[str, Filters]]:
        out = []
        for sub in await self.store.all():
            try:
                if sub.status == "active":
                    out.append((sub.id, Filters.from_dict(sub.filters)))
            except ValueError:
                log.error("subscription %s has unusable filters %r; skipped", sub.id, sub.filters)
        return out

    async def handle(self, records: list[Record]) -> list[Out]:
        """Store every valid alert (Redis errors propagate: the caller retries the batch)."""
        targets = await self._targets()  # read per batch: a new subscription applies at once
        outs = []
        for rec in records:
            try:
                alert = parse_event(Alert, rec.value or b"")
                subs = [
                    sid
                    for sid, f in targets
                    if f.matches(alert.kind, alert.severity, alert.subject)
                ]
                outcome, _ = await self.store.record(
                    alert.alert_id,
                    f"{alert.kind}:{alert.subject}",
                    dumps(alert),
                    severity_rank(alert.severity),
                    cooldown_for(alert.kind, self.s.alert_cooldown_s, self.cooldowns),
                    self.s.alert_dedup_ttl_s,
                    subs,
                )
                if outcome == "stored":
                    ALERTS.labels(alert.kind, alert.severity).inc()
                else:
                    ALERTS_SUPPRESSED.labels(alert.kind, outcome).inc()
            except TRANSIENT:
                raise
            except Exception as exc:  # one bad record (or a bug) must cost that record only
                if not isinstance(exc, InvalidEvent):
                    log.exception("alert at %s/%d/%d failed", rec.topic, rec.partition, rec.offset)
                outs.append(dead_letter(self.deadletter, rec, str(exc), self.worker))
                EVENTS.labels(topic=rec.topic, outcome="deadletter").inc()
        return outs


def register_alerts(app: faust.App, settings: Settings, worker: str) -> None:
    """Add the ``alerts`` dispatcher agent and the webhook delivery service to ``app``.

    Raises ConfigError for a malformed RIVERWATCH_ALERT_COOLDOWN_KINDS.
    """
    names = Names(settings.topic_prefix)
    parts: dict[str, Any] = {}

    def parts_on_loop() -> tuple[Dispatcher, Deliveries]:
        # The asyncio Redis and HTTP clients must be made on the worker's own event loop.
        if not parts:
            store = AlertStore(
                async_redis_client(settings),
                names,
                settings.alert_stream_maxlen,
                settings.webhook_queue_maxlen,
            )
            parts["d"] = Dispatcher(settings, store, worker)
            parts["w"] = Deliveries(settings, store, worker)
        return parts["d"], parts["w"]

    cooldowns(settings)  # a bad setting fails the worker at start, not on the first alert
    alerts_topic = raw_topic(app, names.topic("alerts"))

    @app.agent(alerts_topic)
    async def dispatch_alerts(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.2):
            records = from_events(events)
            dispatcher = parts_on_loop()[0]
            while True:  # Redis down: wait for it rather than lose alerts (dedup makes it safe)
                try:
                    outs = await dispatcher.handle(records)
                    break
                except TRANSIENT as exc:
                    log.warning("alert dispatcher: Redis error %s; retrying the batch", exc)
                    await asyncio.sleep(1.0)
            for o in outs:
                await app.producer.send(o.topic, o.key, o.value, None, None, None)

    @app.service
    class WebhookService(Service):
        async def on_start(self) -> None:
            self._task = asyncio.create_task(parts_on_loop()[1].run())

        async def on_stop(self) -> None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await parts_on_loop()[1].stop()
            await parts_on_loop()[0].store.r.aclose()
