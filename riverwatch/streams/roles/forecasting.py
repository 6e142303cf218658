"""The ``forecasting`` role: the forecasting loop on ``metrics`` (the handler:
streams/forecasting.py), a batch loop run as a service of the worker.

One thread owns the series' states (the loop's), so River work stays off the event loop. A
dead loop takes the worker down; the restarted worker replays from the last commit onto the
last snapshot.
"""

from __future__ import annotations

import faust

from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.forecasting import SNAPSHOT_EVERY_S, ForecastHandler
from riverwatch.streams.runtime import WorkerContext, loop_service, stop_worker


def register(app: faust.App, ctx: WorkerContext) -> BatchLoop:
    """Add the forecasting loop to ``app`` as a service; return it."""
    handler = ForecastHandler(ctx, ctx.redis, ctx.producer, ctx.worker)
    loop = BatchLoop.of_worker(
        ctx,
        "metrics",
        "forecaster",
        handler.process,
        checkpoint=handler.checkpoint,
        commit_every_s=SNAPSHOT_EVERY_S,
        on_failed=handler.rejects.count_failed,  # counted as rejected metric points
    )
    loop_service(app, loop, stop_worker("forecasting"))
    return loop
