"""An entity's state outlives its last update by the retention and no longer: every write sets
both of its hashes' TTLs to ``retention_s`` (so a write keeps an old entity alive), and a hash
that pruning emptied and an increment recreated has one too: no entity key lives forever.
Fails on a write script that sets no TTL, sets it only on a key's first write, or on one hash
only.
"""

from __future__ import annotations

import pytest

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import WINDOWS_DAYS, FeatureSpec
from riverwatch.stores.features import Increments, RedisFeatureStore

pytestmark = pytest.mark.integration

SPEC = FeatureSpec(3600, 7)
P = SPEC.per_day
B0 = 1_800_000_000 // 3600


def _write(store: RedisFeatureStore, bucket: int, prune: int | None = None) -> None:
    inc = Increments()
    inc.add("card", "c", bucket, 1, 10.0, 10.0)
    inc.add("terminal", "t", bucket, 1, 0.0)
    store.write(
        inc, {}, {}, 60, 60, P, WINDOWS_DAYS,
        prune={("card", "c"): prune} if prune is not None else None,
    )  # fmt: skip


def test_every_write_sets_both_ttls_to_the_retention(settings: Settings) -> None:
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    keys = [names.entity(k, e) for k, e in (("card", "c"), ("terminal", "t"))]
    keys += [names.entity_days(k, e) for k, e in (("card", "c"), ("terminal", "t"))]
    ttl = SPEC.retention_s

    _write(store, B0)
    assert all(ttl - 5 <= r.ttl(k) <= ttl for k in keys), [r.ttl(k) for k in keys]
    for bucket in (B0, B0 + 1):  # the same field again, then a new one
        for k in keys:
            r.expire(k, 1000)  # as if the last write were long ago
        _write(store, bucket)
        assert all(ttl - 5 <= r.ttl(k) <= ttl for k in keys), (bucket, [r.ttl(k) for k in keys])


def test_a_hash_emptied_by_pruning_is_not_recreated_without_a_ttl(settings: Settings) -> None:
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    hk = names.entity("card", "c")
    _write(store, B0)
    # 40 days later the old day is pruned in the call that adds the new bucket
    later = B0 + 40 * P
    _write(store, later, prune=SPEC.prune_day(later))
    assert r.hkeys(hk) and all(f.decode().endswith(str(later)) for f in r.hkeys(hk))
    r.delete(hk)  # as if pruning (or eviction) had emptied it, then an increment recreates it
    _write(store, later + 1, prune=SPEC.prune_day(later + 1))
    assert r.exists(hk)
    for key in r.scan_iter(f"{settings.topic_prefix}rw:ent*"):
        assert 0 < r.ttl(key) <= SPEC.retention_s, key
