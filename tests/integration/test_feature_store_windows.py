"""The feature store's window sums (summed in Valkey from day totals and boundary buckets) give
the features of summing every bucket: the stream's stored rows equal an offline replay of the
same history, with long histories, late events, delayed frauds on old buckets, redelivered
batches, state written before day totals existed (migrated on read) and day totals stored a
field per value, as before they were packed (packed again on read or write).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import cast

import numpy as np
import orjson
import pytest
import redis

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec
from riverwatch.models.features_replay import replay
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Record
from riverwatch.streams.scorer import LONE_MIN, Scorer

pytestmark = pytest.mark.integration

T0 = 1_767_225_600
DAY = 86_400


def _tx(eid: str, epoch: float, card: str, term: str, amount: float) -> Record:
    body = {"event_id": eid, "timestamp": epoch, "card_id": card, "terminal_id": term,
            "amount": amount}  # fmt: skip
    return Record("transactions", 0, 0, card.encode(), orjson.dumps(body), None)


def _per_field_layout(r: redis.Redis, key: bytes) -> int:
    """Rewrite a day hash's packed days (``d:<day>``: count, value, maximum, first and last
    bucket as five doubles) as the layout before them stored them; the number of days."""
    h = cast(dict[bytes, bytes], r.hgetall(key))
    days = {f: struct.unpack_from("<ddddd", v) for f, v in h.items() if f.startswith(b"d:")}
    out: dict[str, str] = {"ok": "1"}
    for f, (n, v, m, a, z) in days.items():
        d = f[2:].decode()
        out |= {f"n:{d}": repr(n), f"v:{d}": repr(v), f"a:{d}": str(int(a)), f"z:{d}": str(int(z))}
        if m > 0:  # only cards keep maximums
            out[f"m:{d}"] = repr(m)
    if days:
        r.hdel(key, *days)
    r.hset(key, mapping=out)  # type: ignore[arg-type]
    return len(days)


def _label(eid: str, y: int) -> Record:
    body = {"event_id": eid, "label": y, "timestamp": "2026-01-09T00:00:00Z"}
    return Record("labels", 0, 0, eid.encode(), orjson.dumps(body), None)


# (seed, cards, terminals): a few entities, so that every window holds many buckets and
# batches hit the same entity at several buckets (the scorer's ordered path, models.features
# step); many, so that most transactions are alone on their card and terminal in their batch
# (its array path, models.features_batch)
@pytest.mark.parametrize(
    ("seed", "n_cards", "n_terms", "per_batch"), [(1, 4, 3, 40), (2, 4, 3, 40), (3, 200, 300, 80)]
)
def test_stored_features_equal_an_offline_replay_of_a_long_history(
    settings: Settings, tmp_path: Path, seed: int, n_cards: int, n_terms: int, per_batch: int
) -> None:
    rng = random.Random(seed)
    settings = settings.model_copy(update={"label_delay_days": 3})
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    models = ModelSet(SnapshotStore(r, names), Registry(r, names, tmp_path), 1.0)
    scorer = Scorer(Context.from_settings(settings), store, models, "test:0")
    learner = Learner(Context.from_settings(settings), r, store, SnapshotStore(r, names), "test:0")
    history: list[tuple[object, ...]] = []
    pending: list[tuple[str, float]] = []  # (event id, when its label is due)
    t, i = float(T0), 0
    # Days before the newest batch's prune day are deleted: a late event whose windows reach
    # back there no longer sees them (as before day totals existed), while the offline replay
    # keeps everything. Those events are left out of the comparison (counted below).
    horizon, pruned = -(10**9), set()
    lone = 0  # transactions the scorer's array path computed (alone in a batch with enough)
    while t < T0 + 45 * DAY:
        batch: list[Record] = []
        for _ in range(rng.randint(1, per_batch)):
            t += rng.expovariate(1 / 1800)
            # late events (up to 2 days behind) and a few cards and terminals, so that every
            # window holds many buckets and batches hit the same entity at several buckets
            at = t - (rng.random() * 2 * DAY if rng.random() < 0.1 else 0.0)
            eid = f"e{i}"
            i += 1
            card, term = f"c{rng.randrange(n_cards)}", f"t{rng.randrange(n_terms)}"
            amount = round(rng.lognormvariate(3, 1.5), 2)
            batch.append(_tx(eid, at, card, term, amount))
            reach = spec.oldest_needed(spec.bucket(at))
            if reach < horizon * spec.per_day and horizon * spec.per_day > spec.bucket(
                T0 - 2 * DAY
            ):
                pruned.add(eid)
            history.append(("tx", eid, at, card, term, amount))
            pending.append((eid, at + rng.uniform(0, 10 * DAY)))
        scorer.process(batch)
        ents = [(h[3], h[4]) for h in history[-len(batch) :]]
        alone = sum(1 for c, tm in ents if sum(c == x or tm == y for x, y in ents) == 1)
        lone += alone if alone >= LONE_MIN else 0
        horizon = max(horizon, *(spec.prune_day(spec.bucket(orjson.loads(rec.value)["timestamp"]))
                                 for rec in batch))  # fmt: skip
        if rng.random() < 0.1:  # a redelivered batch changes nothing
            scorer.process(batch)
        due = [e for e, when in pending if when <= t]
        pending = [(e, when) for e, when in pending if when > t]
        labels = [(e, int(rng.random() < 0.3)) for e in due]
        if labels:
            learner.process([_label(e, y) for e, y in labels])
            history += [("label", e, y) for e, y in labels]
        if i > 800 and not getattr(r, "_migrated", False):
            # state as the code before day totals left it: buckets only (read migrates it)
            old = list(r.scan_iter(names.entity_days("*", "*")))
            every = n_cards + n_terms  # (the wide world has not met every entity yet)
            assert len(old) == every if n_cards < 10 else 0.8 * every < len(old) <= every
            assert r.delete(*old) == len(old)
            r._migrated = True  # type: ignore[attr-defined]
        if i > 1500 and not getattr(r, "_repacked", False):
            # state as the scripts before packed days left it (n:/v:/m:/a:/z: per day, ok = 1):
            # the next read or write of each entity packs it again
            assert sum(_per_field_layout(r, k) for k in r.scan_iter(names.entity_days("*", "*")))
            r._repacked = True  # type: ignore[attr-defined]
    offline = replay(spec, history)
    eids = [e for e in offline if e not in pruned]
    assert len(pruned) < 0.05 * len(offline), len(pruned)
    online = [orjson.loads(v)["x"] for v in r.mget([names.feature_row(e) for e in eids])]
    a, b = np.asarray(online, dtype=float), np.asarray([offline[e] for e in eids])
    assert a.shape == b.shape == (len(eids), len(FEATURE_NAMES))
    worst = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    assert worst.max() <= 1e-9, f"max relative difference {worst.max():.3g}"
    # the history reached every window: 30-day counts in the tens or hundreds, frauds late
    assert b[:, FEATURE_NAMES.index("card_n_30d")].max() > (100 if n_cards < 10 else 8)
    assert (b[:, FEATURE_NAMES.index("term_risk_30d")] > 0).sum() > 100
    assert lone > (0.3 * len(offline) if n_cards > 10 else -1), (lone, len(offline))
    r.close()
