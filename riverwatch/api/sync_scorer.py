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

from riverwatch.core.events import Transaction
from riverwatch.core.metrics import count_fills
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import WINDOWS_DAYS, FeatureSpec
from riverwatch.models.scoring import Thresholds, score_matrix, score_record
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore


class SyncScorer:
    """Scores one transaction against the live feature store and models (blocking calls)."""

    def __init__(self, settings: Settings):
        self.r = redis_client(settings)
        names = Names(settings.topic_prefix)
        registry = Registry(self.r, names, settings.data_dir)
        self.spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
        self.features = FeatureSet.parse(settings.feature_attributes)
        self.store = RedisFeatureStore(self.r, names, self.spec.retention_s)
        self.models = ModelSet(
            SnapshotStore(self.r, names), registry, settings.model_reload_s, self.features.names
        )
        self.th = Thresholds.from_settings(settings)

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
        return score_record(tx, res, time.perf_counter() - t0, scored_at)

    def close(self) -> None:
        """Close the Redis connection."""
        self.r.close()
