"""The ``scoring`` role: ``transactions`` -> features -> models -> ``scores`` and alerts.

The scorer (streams/scorer.py) runs on a confluent-kafka batch loop (streams/batching.py) run
as a service of the worker, outside faust's per-event machinery: the hot path.
"""

from __future__ import annotations

import faust

from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.runtime import WorkerContext, loop_service, stop_worker
from riverwatch.streams.scorer import Scorer

# Offsets (of batches whose outputs the broker acknowledged) committed at most this often, not
# after every batch: at 500 tx/s the loop committed 44-107 times a second (session 13), each a
# request the group coordinator answers, and a coordinator that falls behind holds back the
# heartbeats queued after the commits (streams.monitor.agents: the session timeouts that
# stalled the monitor's first loop). A crash replays at most this much more; the scorer is
# idempotent by event_id.
COMMIT_EVERY_S = 0.5


def register(app: faust.App, ctx: WorkerContext) -> BatchLoop:
    """Add the scoring loop to ``app``; return it (the heartbeat reports its partitions)."""
    scorer = Scorer(ctx, ctx.feature_store(ctx.redis), ctx.model_set(ctx.redis), ctx.worker)
    loop = BatchLoop.of_worker(
        ctx,
        "transactions",
        "scorer",
        scorer.process,
        on_failed=scorer.rejects.count_failed,
        commit_every_s=COMMIT_EVERY_S,
    )
    loop.latency = True
    loop_service(app, loop, stop_worker("scoring"))  # (the collector tuned first)
    return loop
