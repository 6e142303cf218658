"""The ``scoring`` role: ``transactions`` -> features -> models -> ``scores`` and alerts.

The scorer (streams/scorer.py) runs on a confluent-kafka batch loop (streams/batching.py) run
as a service of the worker, outside faust's per-event machinery: the hot path.
"""

from __future__ import annotations

import faust

from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.runtime import WorkerContext, loop_service, stop_worker
from riverwatch.streams.scorer import Scorer


def register(app: faust.App, ctx: WorkerContext) -> BatchLoop:
    """Add the scoring loop to ``app``; return it (the heartbeat reports its partitions)."""
    scorer = Scorer(ctx, ctx.feature_store(ctx.redis), ctx.model_set(ctx.redis), ctx.worker)
    loop = BatchLoop.of_worker(
        ctx, "transactions", "scorer", scorer.process, on_failed=scorer.rejects.count_failed
    )
    loop_service(app, loop, stop_worker("scoring"))  # (the collector tuned first)
    return loop
