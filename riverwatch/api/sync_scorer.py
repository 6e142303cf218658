"""Synchronous scoring for POST /v1/score: the stream scorer's features and models, read-only.

The same feature function (models.feature_set.FeatureSet.step) and scoring function
(models.scoring.score_matrix) as the workers, on the same Redis state, so a transaction scored
here gets the score a worker would give it now. Nothing is written.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from riverwatch.context import Context
from riverwatch.core.events import Transaction
from riverwatch.core.metrics import count_fills
from riverwatch.core.redis import redis_client
from riverwatch.models.features import WINDOWS_DAYS
from riverwatch.models.scoring import score_matrix, score_record


class SyncScorer:
    """Scores one transaction against the live feature store and models (blocking calls)."""

    def __init__(self, ctx: Context):
        self.r = redis_client(ctx.redis_config)  # its own blocking client (the API's is asyncio)
        self.spec = ctx.spec
        self.features = ctx.features
        self.store = ctx.feature_store(self.r)
        self.models = ctx.model_set(self.r)
        self.th = ctx.thresholds

    def score(self, tx: Transaction) -> dict[str, Any]:
        """The Score record this transaction would get now (its own counters included)."""
        t0 = time.perf_counter()
        b = self.spec.bucket(tx.epoch)
        q = [("card", tx.card_id, b), ("terminal", tx.terminal_id, b - self.spec.delay_buckets)]
        _, base = self.store.read([], q, self.spec.per_day, WINDOWS_DAYS)
        x, fills = self.features.step(
            self.spec, tx.epoch, tx.amount, tx.attributes, {}, {}, base[q[0]], base[q[1]]
        )
        count_fills(fills, "api")
        res = score_matrix(self.models.current(), np.asarray([x]), self.th, self.features.names)[0]
        now = time.time()
        scored_at = datetime.fromtimestamp(now, UTC).isoformat()
        record = score_record(tx, res, time.perf_counter() - t0, scored_at)
        return {**record, "timestamp": tx.timestamp.isoformat()}  # as the stream's orjson

    def close(self) -> None:
        """Close the Redis connection."""
        self.r.close()
