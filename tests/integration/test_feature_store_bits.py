"""The bits of a day's ``d:`` field (its sixth double: bit h for the day's bucket h holding
data), by which a read of part of a day names only the buckets that hold data: every write and
every migration sets them; a day written before them (five doubles) keeps five and is read
bucket by bucket; the window sums of entities with a few payments a day, read by the bits, equal
the buckets'. (A write or a migration that leaves out a bucket's bit, or a five-double field
read as having no bucket, fails here.)
"""

from __future__ import annotations

import random
import struct
from typing import cast

import pytest
import redis

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import WINDOWS_DAYS, window_sums
from riverwatch.stores.features import RedisFeatureStore
from tests.integration.test_feature_store_boundary import (
    ENTS,
    NEVER,
    SPANS,
    SPEC,
    P,
    Truth,
    _close,
    _write,
)

pytestmark = pytest.mark.integration


def _days(r: redis.Redis, names: Names, e: tuple[str, str]) -> dict[int, bytes]:
    h = cast(dict[bytes, bytes], r.hgetall(names.entity_days(*e)))
    return {int(f[2:]): v for f, v in h.items() if f.startswith(b"d:")}


def _bits(field: bytes) -> set[int]:
    """The hours a six-double ``d:`` field marks as holding data."""
    mask = int(struct.unpack_from("<d", field, 40)[0])
    return {h for h in range(P) if mask >> h & 1}


def _hours(truth: dict[int, list[float]], day: int) -> set[int]:
    return {b - day * P for b in truth if b // P == day}


def _sparse(rng: random.Random, days: range) -> list[list[int]]:
    """Per day, a few buckets (as a card with a few payments a day: 1-4 hours)."""
    return [sorted(rng.sample(range(d * P, d * P + P), rng.randint(1, 4))) for d in days]


def _sparse_history(
    settings: Settings, rng: random.Random, days: range
) -> tuple[redis.Redis, Names, RedisFeatureStore, Truth]:
    """A store whose entities (ENTS) hold ``days`` of a few payments a day, a day a write."""
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    truth: Truth = {e: {} for e in ENTS}
    for buckets in _sparse(rng, days):
        _write(store, truth, rng, buckets)
    return r, names, store, truth


def test_a_day_field_marks_the_buckets_holding_data(settings: Settings) -> None:
    rng = random.Random(3)
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    truth: Truth = {e: {} for e in ENTS}
    for buckets in _sparse(rng, range(100, 110)):
        for b in buckets:  # one write a payment, and a batch of several days at the end
            _write(store, truth, rng, [b])
    _write(store, truth, rng, [103 * P + 5, 107 * P + 23, 109 * P])
    for e in ENTS:
        days = _days(r, names, e)
        assert sorted(days) == list(range(100, 110))
        for day, field in days.items():
            assert len(field) == 48
            assert _bits(field) == _hours(truth[e], day), (e, day)
    r.close()


def test_sparse_days_read_by_their_bits_equal_the_buckets(settings: Settings) -> None:
    """A month of a few payments a day, queried hour after hour (now and a label delay back, as
    a terminal is): every partly covered day is read by its bits."""
    rng = random.Random(5)
    r, _, store, truth = _sparse_history(settings, rng, range(100, 132))
    now, checked = 132 * P, 0
    for _ in range(2 * P):
        now += 1
        if rng.random() < 0.15:
            _write(store, truth, rng, [now])
        qs = [(*e, at) for e in ENTS for at in (now, now - 7 * P)]
        _, plain = store.read([], qs, P, WINDOWS_DAYS, NEVER)
        _, got = store.read([], qs, P, WINDOWS_DAYS)
        for q in qs:
            want = window_sums(truth[(q[0], q[1])], q[2], SPANS)
            assert got[q] == plain[q], (q, got[q], plain[q])
            assert _close(got[q], want), (q, got[q], want)
            checked += 1
    assert checked == 2 * P * 4
    r.close()


def test_days_without_bits_are_read_by_every_bucket_and_keep_five_doubles(
    settings: Settings,
) -> None:
    """A day written before the bits (its field cut to five doubles here) is read bucket by
    bucket and stays five doubles when written to; an entity whose state is only buckets (from
    before day totals) gets its days' bits when it is migrated."""
    rng = random.Random(9)
    r, names, store, truth = _sparse_history(settings, rng, range(100, 112))
    for e in ENTS:  # every day as written before the bits
        r.hset(
            names.entity_days(*e), mapping={f"d:{d}": f[:40] for d, f in _days(r, names, e).items()}
        )
    _write(store, truth, rng, [110 * P + 2, 111 * P + 20])
    qs = [(*e, at) for e in ENTS for at in (111 * P + 21, 111 * P + 1, 110 * P + 5)]
    _, got = store.read([], qs, P, WINDOWS_DAYS)
    for q in qs:
        assert _close(got[q], window_sums(truth[(q[0], q[1])], q[2], SPANS)), q
    for e in ENTS:
        assert {len(f) for f in _days(r, names, e).values()} == {40}
    # buckets only: the first read migrates them into day totals, with their bits
    for e in ENTS:
        r.delete(names.entity_days(*e))
    _, got = store.read([], qs, P, WINDOWS_DAYS)
    for q in qs:
        assert _close(got[q], window_sums(truth[(q[0], q[1])], q[2], SPANS)), q
    for e in ENTS:
        for day, field in _days(r, names, e).items():
            assert len(field) == 48 and _bits(field) == _hours(truth[e], day), (e, day)
    r.close()
