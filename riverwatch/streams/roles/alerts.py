"""The ``alerts`` role: the dispatcher agent on ``alerts`` (streams/alert_dispatcher.py) and
the webhook delivery service (streams/webhook_sender.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust
from mode import Service

from riverwatch.core.redis import async_redis_client
from riverwatch.streams.alert_dispatcher import TRANSIENT, Dispatcher
from riverwatch.streams.records import from_events, raw_topic
from riverwatch.streams.runtime import WorkerContext, produce
from riverwatch.streams.webhook_sender import Deliveries

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Add the ``alerts`` dispatcher agent and the webhook delivery service to ``app``."""
    parts: dict[str, Any] = {}

    def parts_on_loop() -> tuple[Dispatcher, Deliveries]:
        # The asyncio Redis and HTTP clients must be made on the worker's own event loop.
        if not parts:
            store = ctx.alert_store(async_redis_client(ctx.redis_config))
            parts["d"] = Dispatcher(ctx, store, ctx.worker)
            parts["w"] = Deliveries(ctx.webhook_config, store, ctx.worker)
        return parts["d"], parts["w"]

    @app.agent(raw_topic(app, ctx.names.topic("alerts")))
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
            await produce(app, outs)

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
