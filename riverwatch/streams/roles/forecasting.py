"""The ``forecasting`` role: the forecasting loop on ``metrics`` (streams/forecasting.py, which
wires it itself with ``register_forecasting``; this adapts it to ``register(app, ctx)``)."""

from __future__ import annotations

import faust

from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.forecasting import register_forecasting
from riverwatch.streams.runtime import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> BatchLoop:
    """Add the forecasting loop to ``app`` as a service."""
    return register_forecasting(app, ctx.settings, ctx.redis, ctx.producer, ctx.worker)
